"""Writes for accounts: each function one business action in its own transaction, audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.accounts.models import Membership, Merchant, Role, User
from apps.audit.services import audit_record


def merchant_create(*, name: str, owner: User, mcc: str = "", actor: Any = None, request: Any = None) -> Merchant:
    with transaction.atomic():
        merchant = Merchant.objects.create(name=name, mcc=mcc)
        Membership.objects.create(merchant=merchant, user=owner, role=Role.OWNER)
        audit_record(
            action="merchant.created", actor=actor or owner, merchant=merchant, target=merchant,
            data={"name": name, "owner": str(owner.public_id)}, request=request,
        )
    return merchant


def membership_add(*, merchant: Merchant, user: User, role: str, actor: Any, request: Any = None) -> Membership:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    with transaction.atomic():
        membership = Membership.objects.create(merchant=merchant, user=user, role=role)
        audit_record(
            action="membership.added", actor=actor, merchant=merchant, target=membership,
            data={"user": str(user.public_id), "role": role}, request=request,
        )
    return membership
