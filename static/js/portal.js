/* Anfu merchant portal: the only script the pages load (the CSP allows no
   inline script). Plain JavaScript, no dependencies. Its visible texts come
   translated from data-* attributes of <body> (templates/base.html), so the
   server's gettext catalogue is the one place for every string.

   - form[data-confirm] / button[data-confirm]: a confirmation dialog before a
     destructive action is submitted (data-confirm is the question,
     data-confirm-label the button's text).
   - every POST form: the submit button is disabled and shows progress after
     the first click (no double submission); data-progress names the wait.
   - a[data-progress]: a download or long page (exports, statements) shows
     a progress note until the answer starts arriving.
   - the idle warning: before the server's idle limit ends the session. */
(function () {
  "use strict";

  var body = document.body;
  var text = function (name, fallback) {
    return (body && body.dataset[name]) || fallback;
  };

  /* --- confirmation ------------------------------------------------------ */
  var dialog = null;
  function confirmDialog(question, okLabel, onOk) {
    if (typeof HTMLDialogElement === "undefined") {
      if (window.confirm(question)) onOk();
      return;
    }
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "confirm";
      dialog.setAttribute("aria-labelledby", "confirm-title");
      dialog.innerHTML =
        '<form method="dialog"><div class="body"><h2 id="confirm-title"></h2><p></p></div>' +
        '<div class="form-actions"><button class="secondary" value="cancel" type="submit"></button>' +
        '<button class="danger" value="ok" type="submit"></button></div></form>';
      document.body.appendChild(dialog);
    }
    dialog.querySelector("h2").textContent = text("i18nConfirmTitle", "Are you sure?");
    dialog.querySelector("p").textContent = question;
    dialog.querySelector("button[value=cancel]").textContent = text("i18nCancel", "Cancel");
    dialog.querySelector("button[value=ok]").textContent = okLabel || text("i18nConfirm", "Confirm");
    dialog.onclose = function () {
      if (dialog.returnValue === "ok") onOk();
    };
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector("button[value=cancel]").focus();
  }

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement) || form.method === "dialog") return;
      var submitter = event.submitter || null;
      var asker = submitter && submitter.hasAttribute("data-confirm") ? submitter : form;
      if (asker.hasAttribute("data-confirm") && !form.dataset.confirmed) {
        event.preventDefault();
        confirmDialog(asker.getAttribute("data-confirm"), asker.getAttribute("data-confirm-label"), function () {
          form.dataset.confirmed = "1";
          if (submitter && form.requestSubmit) form.requestSubmit(submitter);
          else form.submit();
        });
        return;
      }
      delete form.dataset.confirmed;
      showProgress(form, submitter);
    },
    false
  );

  /* --- progress ---------------------------------------------------------- */
  function progressBar() {
    if (!document.querySelector(".progress-bar")) {
      var bar = document.createElement("div");
      bar.className = "progress-bar";
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-label", text("i18nWorking", "Working…"));
      document.body.appendChild(bar);
    }
  }

  function showProgress(form, submitter) {
    if (form.method.toLowerCase() !== "post") {
      progressBar();
      return;
    }
    if (form.dataset.submitting) return;
    form.dataset.submitting = "1";
    progressBar();
    // Disabled on the next tick: a disabled submitter would drop its own
    // name=value from the submission that is already under way.
    window.setTimeout(function () {
      var buttons = form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
      buttons.forEach(function (button) {
        button.disabled = true;
      });
      var target = submitter || buttons[0];
      if (target && target.tagName === "BUTTON") {
        var spinner = document.createElement("span");
        spinner.className = "spinner";
        spinner.setAttribute("aria-hidden", "true");
        target.insertBefore(spinner, target.firstChild);
      }
      var note = form.getAttribute("data-progress");
      if (note) {
        var p = document.createElement("p");
        p.className = "progress-note";
        p.setAttribute("role", "status");
        p.textContent = note;
        form.appendChild(p);
      }
    }, 0);
  }

  // Back/forward cache: a restored page must not keep its buttons disabled.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      form.querySelectorAll("button[disabled], input[type=submit][disabled]").forEach(function (b) {
        b.disabled = false;
      });
      form.querySelectorAll(".spinner, .progress-note").forEach(function (el) {
        el.remove();
      });
    });
    document.querySelectorAll(".progress-bar").forEach(function (el) {
      el.remove();
    });
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-progress]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (link.getAttribute("aria-disabled") === "true") {
      event.preventDefault();
      return;
    }
    var note = document.createElement("span");
    note.className = "progress-note";
    note.setAttribute("role", "status");
    note.innerHTML = '<span class="spinner" aria-hidden="true"></span>';
    note.appendChild(document.createTextNode(link.getAttribute("data-progress")));
    link.setAttribute("aria-disabled", "true");
    link.insertAdjacentElement("afterend", note);
    // A download leaves this page in place: the note goes once the file has
    // had time to start (streamed exports send their first bytes at once).
    window.setTimeout(function () {
      note.remove();
      link.removeAttribute("aria-disabled");
    }, 6000);
  });

  /* --- idle session warning ---------------------------------------------- */
  var idle = parseInt(text("idleSeconds", "0"), 10);
  if (idle > 120) {
    var warned = null;
    var timer = null;
    var arm = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(warn, (idle - 90) * 1000);
    };
    var warn = function () {
      if (warned) return;
      warned = document.createElement("div");
      warned.className = "idle-warning";
      warned.setAttribute("role", "alert");
      warned.textContent = text("i18nIdle", "Your session ends soon because of inactivity.");
      var stay = document.createElement("button");
      stay.type = "button";
      stay.textContent = text("i18nStay", "Stay signed in");
      stay.addEventListener("click", function () {
        // Any signed-in request resets the server's idle clock.
        fetch(window.location.href, { method: "HEAD", credentials: "same-origin" }).finally(function () {
          warned.remove();
          warned = null;
          arm();
        });
      });
      warned.appendChild(stay);
      document.body.appendChild(warned);
    };
    arm();
  }
})();
