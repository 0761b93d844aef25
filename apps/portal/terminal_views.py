"""Portal pages for terminals: list, detail, register, and the status and
key actions. UI only: every change goes through apps.terminals.services."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import qrcode
from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import DetailView, FormView, ListView

from apps.accounts.models import Shop
from apps.accounts.stepup import StepUpRequiredMixin, stepup_is_fresh, stepup_redirect
from apps.accounts.tenancy import TenantScopedMixin
from apps.portal.views import PortalView
from apps.terminals import services
from apps.terminals.crypto import server_signing_keys
from apps.terminals.models import Terminal, TerminalKey
from apps.terminals.selectors import terminal_distance_from_shop_m, terminal_security_events


class TerminalRegisterForm(forms.Form):
    shop = forms.ModelChoiceField(
        queryset=Shop.objects.none(), label=gettext_lazy("Shop"), to_field_name="public_id"
    )
    serial_number = forms.CharField(max_length=64, label=gettext_lazy("Serial number"))
    model = forms.CharField(max_length=64, required=False, label=gettext_lazy("Model"))
    bind_radius_m = forms.IntegerField(
        min_value=10, max_value=50_000, initial=200, label=gettext_lazy("Bind radius (m)")
    )

    def __init__(self, *args: Any, merchant: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["shop"].queryset = Shop.objects.for_merchant(merchant).order_by("name")


def _activation_qr_data_uri(request: HttpRequest, code: str) -> str:
    """The activation code as a QR code (PNG data URI: the CSP allows data:
    images, never inline script). It carries the server's signing key so the
    terminal can pin it before it trusts the activation answer."""
    payload = json.dumps(
        {
            "anfu": "activate",
            "url": request.build_absolute_uri("/"),
            "code": code,
            "server_key": server_signing_keys()[0].public_b64,
        },
        separators=(",", ":"),
    )
    image = qrcode.make(payload, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _activation_code_page(request: HttpRequest, terminal: Terminal, code: str) -> HttpResponse:
    # Shown once, in the answer to the POST: the code is stored only hashed.
    response = render(
        request,
        "portal/terminals/activation_code.html",
        {"terminal": terminal, "code": code, "qr": _activation_qr_data_uri(request, code)},
    )
    response["Cache-Control"] = "no-store"
    return response


class TerminalListView(PortalView, TenantScopedMixin, ListView):
    capability = "manage_terminals"
    model = Terminal
    template_name = "portal/terminals/list.html"
    context_object_name = "terminals"

    def refine_queryset(self, queryset):
        return queryset.select_related("shop").order_by("-created_at", "pk")


class TerminalDetailView(PortalView, TenantScopedMixin, DetailView):
    capability = "manage_terminals"
    model = Terminal
    template_name = "portal/terminals/detail.html"
    context_object_name = "terminal"
    slug_field = "public_id"
    slug_url_kwarg = "public_id"

    def refine_queryset(self, queryset):
        return queryset.select_related("shop", "merchant")

    def get_context_data(self, **kwargs: Any) -> dict:
        context = super().get_context_data(**kwargs)
        terminal = self.object
        if terminal.last_latitude is not None:
            distance = terminal_distance_from_shop_m(
                terminal, terminal.last_latitude, terminal.last_longitude
            )
            context["distance_m"] = round(distance)
            context["outside_radius"] = distance > terminal.bind_radius_m
        context["keys"] = TerminalKey.objects.filter(terminal=terminal).order_by("-created_at")[:5]
        context["security_events"] = terminal_security_events(terminal=terminal)
        return context


class TerminalRegisterView(StepUpRequiredMixin, PortalView, FormView):
    capability = "manage_terminals"
    template_name = "portal/terminals/register.html"
    form_class = TerminalRegisterForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "merchant": self.request.merchant}  # type: ignore[attr-defined]

    def form_valid(self, form: TerminalRegisterForm) -> HttpResponse:
        try:
            terminal, code = services.terminal_register(
                merchant=self.request.merchant,  # type: ignore[attr-defined]
                shop=form.cleaned_data["shop"],
                serial_number=form.cleaned_data["serial_number"],
                model=form.cleaned_data["model"],
                bind_radius_m=form.cleaned_data["bind_radius_m"],
                actor=self.request.user,
                request=self.request,
            )
        except services.TerminalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.form_invalid(form)
        return _activation_code_page(self.request, terminal, code)


# action: (label, needs OTP step-up). Suspending is never delayed by a
# step-up: it is what one does first when a terminal goes missing.
TERMINAL_ACTIONS = {
    "suspend": (gettext_lazy("Suspend"), False),
    "resume": (gettext_lazy("Resume"), True),
    "retire": (gettext_lazy("Retire"), True),
    "rotate": (gettext_lazy("New activation code / rotate key"), True),
}


class TerminalActionView(PortalView, TenantScopedMixin, DetailView):
    """GET: a confirmation page; POST: the action."""

    capability = "manage_terminals"
    model = Terminal
    template_name = "portal/terminals/confirm.html"
    context_object_name = "terminal"
    slug_field = "public_id"
    slug_url_kwarg = "public_id"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if kwargs.get("action") not in TERMINAL_ACTIONS:
            raise Http404
        return super().dispatch(request, *args, **kwargs)

    def _step_up_needed(self) -> bool:
        return TERMINAL_ACTIONS[self.kwargs["action"]][1] and not stepup_is_fresh(self.request)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.object = self.get_object()  # 404 for another merchant's terminal, before anything else
        if self._step_up_needed():
            return stepup_redirect(request)
        return self.render_to_response(
            self.get_context_data(
                object=self.object,
                action=kwargs["action"],
                action_label=TERMINAL_ACTIONS[kwargs["action"]][0],
            )
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        terminal = self.get_object()
        if self._step_up_needed():
            return stepup_redirect(request)
        action, reason = kwargs["action"], request.POST.get("reason", "")[:200]
        try:
            if action == "suspend":
                services.terminal_suspend(
                    terminal=terminal, actor=request.user, reason=reason, request=request
                )
            elif action == "resume":
                services.terminal_resume(terminal=terminal, actor=request.user, request=request)
            elif action == "retire":
                services.terminal_retire(
                    terminal=terminal, actor=request.user, reason=reason, request=request
                )
            else:
                code = services.terminal_activation_code_issue(
                    terminal=terminal, actor=request.user, request=request
                )
                return _activation_code_page(request, terminal, code)
        except services.TerminalError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, _("Done: %(action)s.") % {"action": TERMINAL_ACTIONS[action][0]}
            )
        return redirect("portal:terminal-detail", public_id=terminal.public_id)
