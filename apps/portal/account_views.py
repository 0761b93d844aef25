"""Portal pages of accounts: the OTP half of sign-in, OTP enrolment and
step-up, merchant sign-up, KYB submission and status, staff invitations and
the cashier's transaction password. UI only: every rule is in
apps.accounts.services; a refused input shows beside its field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django.views import View
from django_otp import login as otp_session_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import selectors, services
from apps.accounts.errors import AccountsError
from apps.accounts.login import (
    BACKEND,
    ENROL_DEVICE_KEY,
    PENDING_AT_KEY,
    PENDING_NEXT_KEY,
    PENDING_USER_KEY,
    otp_login_begin,
    pending_user,
)
from apps.accounts.models import KybApplication, Role, User
from apps.accounts.otp import totp_qr_svg, totp_secret_b32
from apps.accounts.services.merchants import staff_invitation_find
from apps.accounts.stepup import StepUpRequiredMixin, stepup_is_fresh, stepup_mark
from apps.accounts.tenancy import memberships_of
from apps.accounts.validation import document_clean
from apps.portal.views import PortalView


def _error_to_form(form: forms.Form, exc: AccountsError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _safe_next(request: HttpRequest, candidate: str | None, default: str = "portal:home") -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, {request.get_host()}, request.is_secure()
    ):
        return candidate
    return reverse(default)


def _finish_login(request: HttpRequest, user: User, device: Any) -> str:
    next_url = request.session.get(PENDING_NEXT_KEY)
    for key in (PENDING_USER_KEY, PENDING_AT_KEY, PENDING_NEXT_KEY, ENROL_DEVICE_KEY):
        request.session.pop(key, None)
    auth_login(request, user, backend=BACKEND)
    otp_session_login(request, device)
    stepup_mark(request)
    if (
        next_url in (None, "", reverse("portal:home"))
        and user.is_staff
        and not memberships_of(user).exists()
    ):
        # Compliance staff belong to no merchant: their home is the admin.
        return reverse("admin:index")
    return _safe_next(request, next_url)


class OtpTokenForm(forms.Form):
    otp_token = forms.CharField(
        label=_l("Code from your authenticator app (or a backup code)"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class OtpEnrolForm(OtpTokenForm):
    otp_token = forms.CharField(
        label=_l("The 6-digit code your authenticator app now shows"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class LoginOtpView(View):
    """Sign-in, step two: a current TOTP code or an unused backup code. A
    wrong code counts towards the login lockout like a wrong password."""

    template_name = "portal/account/login_otp.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.user = pending_user(request)
        if self.user is None:
            messages.info(request, _("Please sign in again."))
            return redirect("portal:login")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": OtpTokenForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = OtpTokenForm(request.POST)
        if form.is_valid():
            if services.login_is_locked(self.user):
                form.add_error(
                    "otp_token", _("Too many failed sign-ins: this account is locked for a while.")
                )
            else:
                device = services.otp_verify(
                    user=self.user, token=form.cleaned_data["otp_token"], request=request
                )
                if device is not None:
                    return redirect(_finish_login(request, self.user, device))
                services.login_failure_record(user=self.user, request=request)
                form.add_error(
                    "otp_token", _("That code is wrong or expired. Enter the current code.")
                )
        return render(request, self.template_name, {"form": form}, status=400)


class _EnrolMixin:
    """Shows a TOTP device's QR code and confirms it with a first code."""

    template_name = "portal/account/otp_enrol.html"

    def enrol_device(self, request: HttpRequest, user: User) -> TOTPDevice:
        pk = request.session.get(ENROL_DEVICE_KEY)
        device = (
            TOTPDevice.objects.filter(pk=pk, user=user, confirmed=False).first() if pk else None
        )
        if device is None:
            device = services.otp_enrol_start(user=user, request=request)
            request.session[ENROL_DEVICE_KEY] = device.pk
        return device

    def enrol_page(
        self, request: HttpRequest, user: User, form: forms.Form, status: int = 200
    ) -> HttpResponse:
        device = self.enrol_device(request, user)
        context = {"form": form, "qr_svg": totp_qr_svg(device), "secret": totp_secret_b32(device)}
        return render(request, self.template_name, context, status=status)

    def confirm(self, request: HttpRequest, user: User) -> tuple[Any, list[str]] | HttpResponse:
        form = OtpEnrolForm(request.POST)
        if form.is_valid():
            try:
                return services.otp_enrol_confirm(
                    user=user, token=form.cleaned_data["otp_token"], request=request
                )
            except AccountsError as exc:
                _error_to_form(form, exc)
        return self.enrol_page(request, user, form, status=400)


class LoginOtpEnrolView(_EnrolMixin, View):
    """Sign-in, step two for someone without an authenticator: set one up."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.user = pending_user(request)
        if self.user is None:
            return redirect("portal:login")
        if services.otp_has_device(self.user):
            return redirect("portal:login-otp")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.enrol_page(request, self.user, OtpEnrolForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        result = self.confirm(request, self.user)
        if isinstance(result, HttpResponse):
            return result
        device, codes = result
        next_url = _finish_login(request, self.user, device)
        return render(
            request, "portal/account/backup_codes.html", {"codes": codes, "next_url": next_url}
        )


class OtpEnrolView(LoginRequiredMixin, _EnrolMixin, View):
    """For a signed-in user: set up an authenticator, or replace it (which
    needs a fresh step-up with the current one)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (
            request.user.is_authenticated
            and services.otp_has_device(request.user)
            and not stepup_is_fresh(request)
        ):
            return redirect(f"{reverse('portal:otp-step-up')}?next={reverse('portal:otp-enrol')}")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.enrol_page(request, request.user, OtpEnrolForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        result = self.confirm(request, request.user)
        if isinstance(result, HttpResponse):
            return result
        device, codes = result
        request.session.pop(ENROL_DEVICE_KEY, None)
        otp_session_login(request, device)
        stepup_mark(request)
        next_url = _safe_next(request, request.GET.get("next"), "portal:account-security")
        return render(
            request, "portal/account/backup_codes.html", {"codes": codes, "next_url": next_url}
        )


class OtpStepUpView(LoginRequiredMixin, View):
    """Confirms a current code before a sensitive action, then goes back to ?next=."""

    template_name = "portal/account/step_up.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if not services.otp_has_device(request.user):
            return redirect(f"{reverse('portal:otp-enrol')}?next={request.GET.get('next', '')}")
        return render(
            request,
            self.template_name,
            {"form": OtpTokenForm(), "next": request.GET.get("next", "")},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = OtpTokenForm(request.POST)
        if form.is_valid():
            device = services.otp_verify(
                user=request.user, token=form.cleaned_data["otp_token"], request=request
            )
            if device is not None:
                otp_session_login(request, device)
                stepup_mark(request)
                return redirect(
                    _safe_next(request, request.GET.get("next") or request.POST.get("next"))
                )
            form.add_error("otp_token", _("That code is wrong or expired. Enter the current code."))
        return render(
            request,
            self.template_name,
            {"form": form, "next": request.GET.get("next", "")},
            status=400,
        )


class AccountSecurityView(PortalView, View):
    """The signed-in user's sign-in security: authenticator, backup codes."""

    def get(self, request: HttpRequest) -> HttpResponse:
        context = {
            "has_device": services.otp_has_device(request.user),
            "step_up_fresh": stepup_is_fresh(request),
        }
        return render(request, "portal/account/security.html", context)


class BackupCodesView(StepUpRequiredMixin, PortalView, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        codes = services.otp_backup_codes_regenerate(user=request.user, request=request)
        return render(
            request,
            "portal/account/backup_codes.html",
            {"codes": codes, "next_url": reverse("portal:account-security")},
        )


# --- merchant sign-up ----------------------------------------------------------


class SignupForm(forms.Form):
    merchant_name = forms.CharField(label=_l("Merchant name"), max_length=200)
    display_name = forms.CharField(label=_l("Your name"), max_length=100)
    email = forms.EmailField(label=_l("Email"))
    password = forms.CharField(
        label=_l("Password (at least 12 characters)"), widget=forms.PasswordInput, strip=False
    )
    password_again = forms.CharField(
        label=_l("Password again"), widget=forms.PasswordInput, strip=False
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", _("The two passwords differ."))
        return data


class SignupView(View):
    """A new merchant and its owner. The owner then sets up an authenticator
    and submits KYB; the merchant stays in onboarding until approved."""

    template_name = "portal/account/signup.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": SignupForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                merchant = services.merchant_signup(
                    merchant_name=data["merchant_name"],
                    email=data["email"],
                    password=data["password"],
                    display_name=data["display_name"],
                    request=request,
                )
            except AccountsError as exc:
                _error_to_form(form, exc)
            else:
                owner = merchant and User.objects.get(email=data["email"].strip().lower())
                return otp_login_begin(request, owner, next_url=reverse("portal:kyb"))
        return render(request, self.template_name, {"form": form}, status=400)


# --- KYB ------------------------------------------------------------------------


class KybForm(forms.Form):
    company_name = forms.CharField(label=_l("Registered company name"), max_length=200)
    uscc = forms.CharField(label=_l("Unified social credit code"), max_length=30)
    mcc = forms.CharField(label=_l("Business category (MCC)"), max_length=4, min_length=4)
    registered_address = forms.CharField(label=_l("Registered address"), max_length=300)
    licence = forms.FileField(label=_l("Business licence (JPEG or PNG)"))
    legal_rep_legal_name = forms.CharField(label=_l("Legal representative's name"), max_length=100)
    legal_rep_id_number = forms.CharField(
        label=_l("Legal representative's resident ID number"), max_length=30
    )
    legal_rep_phone = forms.CharField(label=_l("Legal representative's mobile"), max_length=20)
    legal_rep_id_front = forms.FileField(label=_l("ID card, front"))
    legal_rep_id_back = forms.FileField(label=_l("ID card, back"))
    legal_rep_is_me = forms.BooleanField(label=_l("I am the legal representative"), required=False)
    shop_name = forms.CharField(label=_l("Shop name"), max_length=200)
    shop_address = forms.CharField(label=_l("Shop address"), max_length=300)
    shop_latitude = forms.DecimalField(
        label=_l("Latitude"), max_digits=9, decimal_places=6, min_value=-90, max_value=90
    )
    shop_longitude = forms.DecimalField(
        label=_l("Longitude"), max_digits=9, decimal_places=6, min_value=-180, max_value=180
    )
    shop_opens_at = forms.TimeField(label=_l("Opens at"), initial="08:00")
    shop_closes_at = forms.TimeField(label=_l("Closes at"), initial="22:00")
    bo_legal_name = forms.CharField(
        label=_l("Beneficial owner's name (optional)"), max_length=100, required=False
    )
    bo_id_number = forms.CharField(
        label=_l("Beneficial owner's ID number"), max_length=30, required=False
    )
    bo_phone = forms.CharField(label=_l("Beneficial owner's mobile"), max_length=20, required=False)
    bo_share_percent = forms.DecimalField(
        label=_l("Share (%)"),
        max_digits=5,
        decimal_places=2,
        required=False,
        min_value=0.01,
        max_value=100,
    )
    bo_id_front = forms.FileField(label=_l("Beneficial owner's ID card, front"), required=False)
    bo_id_back = forms.FileField(label=_l("Beneficial owner's ID card, back"), required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("bo_legal_name"):
            for name in (
                "bo_id_number",
                "bo_phone",
                "bo_share_percent",
                "bo_id_front",
                "bo_id_back",
            ):
                if not data.get(name):
                    self.add_error(name, _("Required when a beneficial owner is named."))
        return data


class KybView(PortalView, View):
    """The merchant's business verification: status and history, and the
    form while a (re)submission is allowed."""

    capability = "manage_merchant"
    template_name = "portal/account/kyb.html"

    def context(self, request: HttpRequest, form: forms.Form | None) -> dict:
        kyb = selectors.kyb_latest_for_merchant(merchant=request.merchant)
        may_submit = kyb is None or (
            kyb.status in (KybApplication.Status.REJECTED, KybApplication.Status.EXPIRED)
            and kyb.may_resubmit
        )
        return {
            "kyb": kyb,
            "history": list(kyb.history.all()) if kyb else [],
            "form": (form or KybForm()) if may_submit else None,
        }

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, self.context(request, None))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = KybForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                kyb = self.submit(request, data)
            except AccountsError as exc:
                _error_to_form(form, exc)
            else:
                messages.success(request, _("Your business verification was submitted for review."))
                del kyb
                return redirect("portal:kyb")
        return render(request, self.template_name, self.context(request, form), status=400)

    def submit(self, request: HttpRequest, data: dict) -> KybApplication:
        # Checked in the form's order, so the first error is the first field at fault.
        licence = document_clean(data["licence"], field="licence")
        rep = services.person_clean(
            legal_name=data["legal_rep_legal_name"],
            id_number=data["legal_rep_id_number"],
            phone=data["legal_rep_phone"],
            id_front=document_clean(data["legal_rep_id_front"], field="legal_rep_id_front"),
            id_back=document_clean(data["legal_rep_id_back"], field="legal_rep_id_back"),
            prefix="legal_rep_",
        )
        owners = []
        if data.get("bo_legal_name"):
            owner = services.person_clean(
                legal_name=data["bo_legal_name"],
                id_number=data["bo_id_number"],
                phone=data["bo_phone"],
                id_front=document_clean(data["bo_id_front"], field="bo_id_front"),
                id_back=document_clean(data["bo_id_back"], field="bo_id_back"),
                prefix="bo_",
            )
            owners.append(services.OwnerInput(person=owner, share_percent=data["bo_share_percent"]))
        shop = services.ShopInput(
            name=data["shop_name"],
            address=data["shop_address"],
            latitude=data["shop_latitude"],
            longitude=data["shop_longitude"],
            opens_at=data["shop_opens_at"],
            closes_at=data["shop_closes_at"],
        )
        return services.kyb_submit(
            merchant=request.merchant,
            actor=request.user,
            company_name=data["company_name"],
            uscc=data["uscc"],
            mcc=data["mcc"],
            registered_address=data["registered_address"],
            licence=licence,
            legal_rep=rep,
            legal_rep_is_actor=data["legal_rep_is_me"],
            shops=[shop],
            beneficial_owners=owners,
            request=request,
        )


# --- staff invitations -------------------------------------------------------------


class InviteForm(forms.Form):
    email = forms.EmailField(label=_l("Email"))
    role = forms.ChoiceField(
        label=_l("Role"),
        choices=[(r.value, r.label) for r in (Role.MANAGER, Role.CASHIER, Role.VIEWER)],
    )


class StaffInviteView(PortalView, View):
    capability = "manage_staff"
    template_name = "portal/account/staff_invite.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": InviteForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                invitation, token = services.staff_invitation_create(
                    merchant=request.merchant,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    actor=request.user,
                    request=request,
                )
            except AccountsError as exc:
                _error_to_form(form, exc)
            else:
                link = request.build_absolute_uri(reverse("portal:invite-accept", args=[token]))
                return render(
                    request,
                    self.template_name,
                    {"form": InviteForm(), "invitation": invitation, "link": link},
                )
        return render(request, self.template_name, {"form": form}, status=400)


class AcceptForm(forms.Form):
    display_name = forms.CharField(label=_l("Your name"), max_length=100)
    password = forms.CharField(
        label=_l("Password (at least 12 characters)"), widget=forms.PasswordInput, strip=False
    )


class InvitationAcceptView(View):
    """Joins a merchant's staff from an invitation link."""

    template_name = "portal/account/invitation_accept.html"

    def dispatch(self, request: HttpRequest, token: str, *args: Any, **kwargs: Any) -> HttpResponse:
        self.token = token
        self.invitation = staff_invitation_find(token)
        if self.invitation is None:
            return render(request, self.template_name, {"invalid": True}, status=404)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(
            request,
            self.template_name,
            {
                "invitation": self.invitation,
                "form": AcceptForm(),
                "existing": User.objects.filter(email=self.invitation.email).exists(),
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        existing = User.objects.filter(email=self.invitation.email).exists()
        form = AcceptForm(request.POST)
        if existing:
            if not request.user.is_authenticated:
                return redirect(f"{reverse('portal:login')}?next={request.path}")
            try:
                services.staff_invitation_accept(
                    token=self.token, user=request.user, request=request
                )
            except AccountsError as exc:
                messages.error(request, exc.message)
                return redirect("portal:home")
            return redirect("portal:home")
        if form.is_valid():
            try:
                membership = services.staff_invitation_accept(
                    token=self.token,
                    password=form.cleaned_data["password"],
                    display_name=form.cleaned_data["display_name"],
                    request=request,
                )
            except AccountsError as exc:
                _error_to_form(form, exc)
            else:
                return otp_login_begin(request, membership.user, next_url=reverse("portal:home"))
        context = {"invitation": self.invitation, "form": form, "existing": existing}
        return render(request, self.template_name, context, status=400)


# --- cashier's transaction password -----------------------------------------------


class OperatorPinForm(forms.Form):
    pin = forms.CharField(
        label=_l("New 6-digit transaction password"),
        min_length=6,
        max_length=6,
        strip=False,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    pin_again = forms.CharField(
        label=_l("Again"),
        min_length=6,
        max_length=6,
        strip=False,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("pin") and data.get("pin") != data.get("pin_again"):
            self.add_error("pin_again", _("The two entries differ."))
        return data


class OperatorPinView(StepUpRequiredMixin, PortalView, View):
    """A cashier sets their transaction password (needs a fresh OTP)."""

    capability = "set_operator_pin"
    template_name = "portal/account/operator_pin.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": OperatorPinForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = OperatorPinForm(request.POST)
        if form.is_valid():
            try:
                services.operator_pin_set(
                    membership=request.membership,
                    pin=form.cleaned_data["pin"],
                    actor=request.user,
                    request=request,
                )
            except AccountsError as exc:
                _error_to_form(form, exc)
            else:
                messages.success(
                    request,
                    _(
                        "Your transaction password is set; terminals receive it at your next sign-in."
                    ),
                )
                return redirect("portal:home")
        return render(request, self.template_name, {"form": form}, status=400)
