"""Merchants, staff and payers: sign-up, memberships, invitations."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.errors import AccountsError
from apps.accounts.models import Membership, Merchant, Payer, Role, StaffInvitation, User
from apps.audit.services import audit_record


def merchant_create(
    *, name: str, owner: User, mcc: str = "", actor: Any = None, request: Any = None
) -> Merchant:
    with transaction.atomic():
        merchant = Merchant.objects.create(name=name, mcc=mcc)
        Membership.objects.create(merchant=merchant, user=owner, role=Role.OWNER)
        audit_record(
            action="merchant.created",
            actor=actor or owner,
            merchant=merchant,
            target=merchant,
            data={"name": name, "owner": str(owner.public_id)},
            request=request,
        )
    return merchant


def membership_add(
    *, merchant: Merchant, user: User, role: str, actor: Any, request: Any = None
) -> Membership:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    with transaction.atomic():
        membership = Membership.objects.create(merchant=merchant, user=user, role=role)
        audit_record(
            action="membership.added",
            actor=actor,
            merchant=merchant,
            target=membership,
            data={"user": str(user.public_id), "role": role},
            request=request,
        )
    return membership


def email_clean(email: str) -> str:
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise AccountsError(
            "invalid_email", "Enter a valid email address.", field="email"
        ) from None
    return email


def password_clean(password: str, *, user: User | None = None) -> str:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AccountsError("weak_password", " ".join(exc.messages), field="password") from None
    return password


def _user_create(*, email: str, password: str, display_name: str = "") -> User:
    email = email_clean(email)
    candidate = User(email=email, display_name=display_name)
    password_clean(password, user=candidate)
    if User.objects.filter(email=email).exists():
        raise AccountsError(
            "email_taken", "An account with this email already exists.", field="email"
        )
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, display_name=display_name)
    except IntegrityError:  # the same email registered concurrently
        raise AccountsError(
            "email_taken", "An account with this email already exists.", field="email"
        ) from None


def merchant_signup(
    *, merchant_name: str, email: str, password: str, display_name: str = "", request: Any = None
) -> Merchant:
    """A new merchant with its owner's account. The merchant starts in
    ONBOARDING and stays there until compliance approves its KYB."""
    if not merchant_name.strip():
        raise AccountsError(
            "merchant_name_required", "The merchant's name is required.", field="merchant_name"
        )
    with transaction.atomic():
        owner = _user_create(email=email, password=password, display_name=display_name)
        merchant = merchant_create(name=merchant_name.strip(), owner=owner, request=request)
    return merchant


def payer_register(
    *, email: str, password: str, display_name: str = "", request: Any = None
) -> Payer:
    """A wallet holder's account. Unverified (cannot pay) until KYC approval."""
    with transaction.atomic():
        user = _user_create(email=email, password=password, display_name=display_name)
        payer = Payer.objects.create(user=user)
        audit_record(action="payer.registered", actor=user, target=payer, request=request)
    return payer


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def staff_invitation_create(
    *, merchant: Merchant, email: str, role: str, actor: User, request: Any = None
) -> tuple[StaffInvitation, str]:
    """Invites someone to the merchant's staff with a role: (invitation,
    token for the link). Owners are made only at sign-up."""
    email = email_clean(email)
    if role not in (Role.MANAGER, Role.CASHIER, Role.VIEWER):
        raise AccountsError("invalid_role", "Choose manager, cashier or viewer.", field="role")
    if Membership.objects.for_merchant(merchant).filter(user__email=email).exists():
        raise AccountsError(
            "already_member", "This person is already on your staff.", field="email"
        )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = StaffInvitation.objects.create(
            merchant=merchant,
            email=email,
            role=role,
            token_hash=invitation_token_hash(token),
            invited_by=actor,
            expires_at=timezone.now()
            + datetime.timedelta(seconds=settings.STAFF_INVITATION_SECONDS),
        )
        audit_record(
            action="staff.invited",
            actor=actor,
            merchant=merchant,
            target=invitation,
            data={"email": email, "role": role},
            request=request,
        )
    return invitation, token


def staff_invitation_find(token: str) -> StaffInvitation | None:
    invitation = (
        StaffInvitation.objects.select_related("merchant")
        .filter(
            token_hash=invitation_token_hash(token or ""),
            accepted_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )
    return invitation


def staff_invitation_accept(
    *,
    token: str,
    password: str = "",
    display_name: str = "",
    user: User | None = None,
    request: Any = None,
) -> Membership:
    """Accepts an invitation: as the signed-in `user` whose email it names,
    or by creating the account with `password`."""
    with transaction.atomic():
        invitation = staff_invitation_find(token)
        if invitation is None:
            raise AccountsError(
                "invitation_invalid", "This invitation is invalid, used or expired."
            )
        invitation = StaffInvitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None:
            raise AccountsError(
                "invitation_invalid", "This invitation is invalid, used or expired."
            )
        if user is None:
            user = _user_create(
                email=invitation.email, password=password, display_name=display_name
            )
        elif user.email != invitation.email:
            raise AccountsError(
                "invitation_other_email", "This invitation is for another email address."
            )
        membership = membership_add(
            merchant=invitation.merchant,
            user=user,
            role=invitation.role,
            actor=user,
            request=request,
        )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        audit_record(
            action="staff.invitation_accepted",
            actor=user,
            merchant=invitation.merchant,
            target=invitation,
            request=request,
        )
    return membership
