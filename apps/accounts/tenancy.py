"""The tenancy core. Merchants are the tenants; every tenant-owned row carries
its merchant, and every portal view and API query reaches rows only through
the scoped helpers here. "Not yours" and "does not exist" are the same 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from apps.accounts.models import Membership, Merchant

SESSION_MERCHANT_KEY = "merchant_id"
API_MERCHANT_HEADER = "Anfu-Merchant"


class TenantQuerySet(models.QuerySet):
    def for_merchant(self, merchant: Merchant | None) -> TenantQuerySet:
        if merchant is None or merchant.pk is None:
            # Refuse rather than return everything or nothing silently.
            raise ValueError("a tenant-scoped query needs a merchant")
        return self.filter(merchant=merchant)


class TenantOwnedModel(models.Model):
    """Base of every tenant-owned model."""

    merchant = models.ForeignKey(
        "accounts.Merchant", on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant")
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


def memberships_of(user: Any) -> models.QuerySet[Membership]:
    from apps.accounts.models import Membership, Merchant

    return (
        Membership.objects.filter(user=user, is_active=True)
        .exclude(merchant__status=Merchant.Status.CLOSED)
        .select_related("merchant")
        .order_by("created_at", "pk")
    )


def membership_resolve(user: Any, merchant_public_id: str | None) -> Membership | None:
    """The user's active membership at the named merchant, or their first one
    when none is named. None when the user belongs to no (such) merchant."""
    if not getattr(user, "is_authenticated", False):
        return None
    memberships = memberships_of(user)
    if merchant_public_id:
        try:
            return memberships.filter(merchant__public_id=merchant_public_id).first()
        except Exception:  # malformed UUID: not a merchant of theirs
            return None
    return memberships.first()


class CurrentMerchantMiddleware:
    """Sets request.membership and request.merchant for portal requests from
    the merchant chosen in the session (or the user's first)."""

    SKIP_PREFIXES = ("/static/", "/healthz", "/api/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.merchant = None  # type: ignore[attr-defined]
        if not request.path.startswith(self.SKIP_PREFIXES) and request.user.is_authenticated:
            membership = membership_resolve(request.user, request.session.get(SESSION_MERCHANT_KEY))
            if membership is not None:
                request.membership = membership  # type: ignore[attr-defined]
                request.merchant = membership.merchant  # type: ignore[attr-defined]
        return self.get_response(request)


class TenantScopedMixin:
    """For portal views and API views alike: the queryset is the model's rows
    of the current merchant. Subclasses narrow it in `refine_queryset`; the
    merchant filter is applied last, so they cannot widen it, and they may not
    override get_queryset at all."""

    model: type[TenantOwnedModel]
    lookup_field = "public_id"
    request: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must scope through refine_queryset, not get_queryset")

    def current_merchant(self) -> Merchant:
        merchant = getattr(self.request, "merchant", None)
        if merchant is None:
            raise Http404
        return merchant

    def refine_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        return queryset

    def get_queryset(self) -> models.QuerySet:
        queryset = self.refine_queryset(self.model.objects.all())
        return queryset.filter(merchant=self.current_merchant())
