"""No string of the portal is left untranslated in zh-hans: the catalogue is
complete and compiled, and a walk through every page in Chinese finds no
English sentence on it (neither a catalogue msgid nor a string that never
went through gettext). English is the source language: the same walk in
English must show those msgids."""

from __future__ import annotations

import gettext
import html
import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from apps.accounts.models import User
from apps.terminals.models import Terminal
from apps.terminals.services import terminal_register
from apps.transactions.models import Payment
from apps.transactions.services import payment_code_issue, payment_create, request_hash
from tests.accounts.factories import ShopFactory
from tests.accounts.helpers import kyb_submit_for, otp_force_login
from tests.transactions.factories import funded_payer
from tests.transactions.pos import risk_exempt, staff_with_pin

LOCALE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"

# Words that stay as they are in Chinese text: names, codes, technical terms.
KEEP = {
    "Anfu",
    "English",
    "CSV",
    "KYB",
    "KYC",
    "MCC",
    "OTP",
    "API",
    "IP",
    "JPEG",
    "PNG",
    "QR",
    "ID",
    "CNY",
    "Google Authenticator",
    # Process names an operator looks for in logs (the background-process warning).
    "Celery worker",
    "Celery beat",
    "Microsoft Authenticator",
    "FreeOTP",
    "Lime Coffee",
}


def _po_entries() -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of the zh-hans catalogue (plural: msgstr[0])."""
    text = (LOCALE / "django.po").read_text(encoding="utf-8")
    entries = []
    for block in text.split("\n\n"):
        if block.lstrip().startswith("#~"):
            continue  # obsolete
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            match = re.match(r'^(msgid|msgid_plural|msgstr|msgstr\[0\]|msgctxt) "(.*)"$', line)
            if match:
                current = match.group(1)
                fields[current] = match.group(2)
            elif line.startswith('"') and current:
                fields[current] += line[1:-1]
        if fields.get("msgid"):
            msgstr = fields.get("msgstr", fields.get("msgstr[0]", ""))
            entries.append((_unescape(fields["msgid"]), _unescape(msgstr), "fuzzy" in block))
    return entries


def _unescape(value: str) -> str:
    return value.encode("latin-1", "backslashreplace").decode("unicode_escape")


def test_every_catalogue_entry_is_translated_and_none_is_fuzzy():
    entries = _po_entries()
    assert len(entries) > 300
    assert [m for m, s, _f in entries if not s] == []
    assert [m for m, _s, f in entries if f] == []


def test_the_compiled_catalogue_matches_the_source():
    with (LOCALE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    stale = [m for m, s, _f in _po_entries() if "%(n)s" not in m and compiled.gettext(m) != s]
    assert stale == [], "run: python manage.py compilemessages -l zh_Hans"


def _visible_text(body: str) -> str:
    body = re.sub(r"(?is)<(script|style|svg)\b.*?</\1>", " ", body)
    # Attributes people read (button labels, placeholders, titles) count too.
    attrs = " ".join(re.findall(r'(?:placeholder|title|aria-label|alt)="([^"]*)"', body))
    text = re.sub(r"(?s)<[^>]+>", " ", body)
    return html.unescape(f"{text} {attrs}")


def _english_phrases(text: str) -> list[str]:
    text = re.sub(r"[\w.+-]+@[\w.-]+", " ", text)  # emails
    text = re.sub(r"\b[0-9a-f]{8}-[0-9a-f-]{27}\b", " ", text)  # UUIDs
    for keep in sorted(KEEP, key=len, reverse=True):
        text = text.replace(keep, " ")
    # Two or more English words in a row: a sentence or label nobody translated.
    phrases = re.findall(r"\b[A-Za-z][a-z]+(?:[ '’-]+[A-Za-z][a-z]+)+\b", text)
    # Or one capitalised word on its own (a lone label such as "Dashboard").
    phrases += re.findall(r"(?<![\w-])[A-Z][a-z]{2,}(?![\w-])", text)
    # Or a lone lowercase word the catalogue translates (a raw status code
    # such as "submitted" shown instead of its display name).
    words = set(re.findall(r"(?<![\w./:-])[a-z]{3,}(?![\w./:-])", text))
    phrases += sorted(words & _translated_words())
    return phrases


def _translated_words() -> set[str]:
    return {m for m, s, _f in _po_entries() if re.fullmatch(r"[a-z]{3,}", m) and s != m}


@pytest.fixture
def shop_payment(merchant, owner):
    shop = ShopFactory(
        merchant=merchant, name="青柠门店", latitude="31.230400", longitude="121.473700"
    )
    terminal, _code = terminal_register(
        merchant=merchant, shop=shop, serial_number="SN-I18N", model="P2", actor=owner
    )
    Terminal.objects.filter(pk=terminal.pk).update(status=Terminal.Status.ACTIVE)
    operator = staff_with_pin(merchant, "cashier")
    payer = risk_exempt(funded_payer(10_000_00, user__display_name="张三丰"))
    key = uuid.uuid4().hex
    answer = payment_create(
        terminal=terminal,
        idempotency_key=key,
        digest=request_hash("POST", "/p", {"k": key}),
        amount=123_45,
        currency="CNY",
        payment_code=payment_code_issue(payer=payer).code,
        operator_id=str(operator.public_id),
    )
    kyb_submit_for(merchant, owner)  # the verification page with its history
    # The factories' English sample names ("User 7") are data, not UI text.
    User.objects.update(display_name="测试员工")
    return terminal, Payment.objects.get(public_id=answer.body["id"])


def _owner_pages(terminal, payment) -> list[str]:
    pages = [
        reverse("portal:home"),
        reverse("portal:activity"),
        reverse("portal:staff-list"),
        reverse("portal:staff-invite"),
        reverse("portal:kyb"),
        reverse("portal:account-security"),
        reverse("portal:terminal-list"),
        reverse("portal:terminal-register"),
        reverse("portal:terminal-detail", args=[terminal.public_id]),
        reverse("portal:risk-holds"),
        reverse("portal:transaction-list"),
        reverse("portal:transaction-detail", args=[payment.public_id]),
        reverse("portal:transaction-refund", args=[payment.public_id]),
        reverse("portal:statements"),
        reverse("portal:withdraw"),
        "/no-such-page/",
    ]
    return pages


@pytest.mark.django_db
def test_every_portal_page_in_chinese_shows_no_english(client, owner, cashier, shop_payment):
    terminal, payment = shop_payment
    otp_force_login(client, owner)
    found: dict[str, list[str]] = {}
    for url in _owner_pages(terminal, payment):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
        assert response.status_code in (200, 404), (url, response.status_code)
        assert response["Content-Language"] == "zh-hans"
        phrases = _english_phrases(_visible_text(response.content.decode()))
        if phrases:
            found[url] = sorted(set(phrases))

    # A cashier's refused page, and the pages before sign-in.
    client.logout()
    otp_force_login(client, cashier)
    refused = client.get(reverse("portal:staff-list"), HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert refused.status_code == 403
    client.logout()
    pages = [refused]
    pages += [
        client.get(reverse(name), HTTP_ACCEPT_LANGUAGE="zh-CN")
        for name in ("portal:login", "portal:signup")
    ]
    for response in pages:
        phrases = _english_phrases(_visible_text(response.content.decode()))
        if phrases:
            found[response.request["PATH_INFO"]] = sorted(set(phrases))

    assert found == {}


@pytest.mark.django_db
def test_the_compliance_dashboard_in_chinese_shows_no_english_of_ours(client, compliance):
    otp_force_login(client, compliance)
    response = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert response.status_code == 200
    body = response.content.decode()
    # The dashboard only: the apps' model list below it is Django's.
    body = re.sub(r'(?s)<div class="app-[^"]*">.*?</table>\s*</div>', " ", body)
    text = _visible_text(body)
    ours = {
        m
        for m, _s, _f in _po_entries()
        if re.search(r"[A-Za-z]{3}", m) and "%(" not in m and m not in KEEP
    }
    shown = [m for m in ours if re.search(rf"(?<![\w@.-]){re.escape(m)}(?![\w@-])", text)]
    assert shown == []
    assert "待审核的企业认证" in text


@pytest.mark.django_db
def test_the_same_pages_in_english_show_the_source_strings(client, owner, shop_payment):
    otp_force_login(client, owner)
    body = client.get(reverse("portal:home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Today's sales" in html.unescape(body)
    assert "今日收款" not in body


@pytest.mark.django_db
def test_the_language_switcher_sets_the_language_for_the_session(client, owner):
    otp_force_login(client, owner)
    client.get(reverse("portal:home"), HTTP_ACCEPT_LANGUAGE="zh-CN")
    response = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("portal:home")}
    )
    assert response.status_code == 302
    body = client.get(reverse("portal:home"), HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "Dashboard" in body
    assert 'lang="en"' in body


# The compliance admin: the apps whose names, model names, column headers,
# filters and buttons compliance reads in Chinese.
ADMIN_APPS = ("accounts", "audit", "backups", "risk", "transactions")


def _admin_words(body: str) -> str:
    """The admin's own words on a page: not the rows of a list (data: codes,
    ids, names), nor the alt texts Django hard-codes in English on its icons
    ("Search", "True"), nor job names (slugs such as risk-holds-expire)."""
    body = re.sub(r'(?s)(<table id="result_list">.*?<tbody>).*?(</tbody>)', r"\1\2", body)
    body = re.sub(r'<img[^>]*src="[^"]*/admin/img/[^"]*"[^>]*>', " ", body)
    return re.sub(r"(?<![\w-])[a-z]+(?:-[a-z]+)+(?![\w-])", " ", body)


def _admin_pages() -> list[str]:
    from django.contrib import admin

    pages = [reverse("admin:index")]
    pages += [reverse("admin:app_list", args=[app]) for app in ADMIN_APPS]
    for model in admin.site._registry:
        if model._meta.app_label in ADMIN_APPS:
            info = model._meta.app_label, model._meta.model_name
            pages.append(reverse("admin:{}_{}_changelist".format(*info)))
    return pages


@pytest.mark.django_db
def test_the_compliance_admin_in_chinese_shows_no_english(client, compliance, shop_payment):
    """Every app and model name, column header, filter and button of the
    compliance admin's lists, with a payment and its ledger, audit trail,
    risk decision and a KYB review in them."""
    otp_force_login(client, compliance)
    found: dict[str, list[str]] = {}
    for url in _admin_pages():
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9", follow=True)
        assert response.status_code == 200, url
        assert response["Content-Language"] == "zh-hans"
        phrases = _english_phrases(_visible_text(_admin_words(response.content.decode())))
        if phrases:
            found[url] = sorted(set(phrases))
    assert found == {}, "\n".join(f"{url}: {', '.join(p)}" for url, p in found.items())


@pytest.mark.django_db
def test_the_admin_sign_in_page_in_chinese_shows_no_english(client):
    response = client.get(reverse("admin:login"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert response.status_code == 200
    text = _visible_text(response.content.decode())
    assert _english_phrases(text) == []
    assert "OTP Token" not in text
