from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.accounts.tenancy import memberships_of

# Navigation: (url name, label wrapped in _(), capability needed). The templates show only
# what the current role may use; the views check the same capability.
NAV_ITEMS = [
    ("portal:home", _("Dashboard"), "view_dashboard"),
    ("portal:staff-list", _("Staff"), "manage_staff"),
    ("portal:staff-invite", _("Invite staff"), "manage_staff"),
    ("portal:kyb", _("Verification"), "manage_merchant"),
    ("portal:operator-pin", _("Transaction password"), "set_operator_pin"),
    ("portal:account-security", _("Security"), "view_dashboard"),
    ("portal:terminal-list", _("Terminals"), "manage_terminals"),
    ("portal:transaction-list", _("Transactions"), "view_transactions"),
    ("portal:statements", _("Statements"), "view_statements"),
    ("portal:withdraw", _("Withdraw"), "withdraw"),
    ("portal:risk-holds", _("Held payments"), "view_transactions"),
    ("portal:activity", _("Activity log"), "view_activity"),
]


def _nav(request: HttpRequest, membership) -> list[dict]:
    """The entries the role may use; the current one is the entry whose path
    is the longest prefix of this page's (a terminal's page lights up
    "Terminals"); the dashboard only on itself."""
    items = [
        {"url": reverse(name), "label": label, "current": False}
        for name, label, cap in NAV_ITEMS
        if membership.can(cap)
    ]
    matches = [
        i
        for i in items
        if request.path == i["url"] or (i["url"] != "/" and request.path.startswith(i["url"]))
    ]
    if matches:
        max(matches, key=lambda i: len(i["url"]))["current"] = True
    return items


def portal(request: HttpRequest) -> dict:
    idle = {"session_idle_seconds": settings.SESSION_IDLE_SECONDS}
    membership = getattr(request, "membership", None)
    if membership is None:
        return {"nav_items": [], "current_membership": None, **idle}
    return {
        "current_membership": membership,
        "current_merchant": membership.merchant,
        "nav_items": _nav(request, membership),
        "other_memberships": [m for m in memberships_of(request.user) if m.pk != membership.pk],
        **idle,
    }
