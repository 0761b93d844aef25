from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.accounts.tenancy import memberships_of

# Navigation: (url name, label wrapped in _(), capability needed). The templates show only
# what the current role may use; the views check the same capability.
NAV_ITEMS = [
    ("portal:home", _("Dashboard"), "view_dashboard"),
    ("portal:staff-list", _("Staff"), "manage_staff"),
]


def portal(request: HttpRequest) -> dict:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"nav_items": [], "current_membership": None}
    return {
        "current_membership": membership,
        "current_merchant": membership.merchant,
        "nav_items": [(name, label) for name, label, cap in NAV_ITEMS if membership.can(cap)],
        "other_memberships": [m for m in memberships_of(request.user) if m.pk != membership.pk],
    }
