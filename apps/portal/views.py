from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import DetailView, ListView, TemplateView

from apps.accounts.login import LockoutAuthenticationForm, otp_login_begin
from apps.accounts.models import Membership
from apps.accounts.tenancy import SESSION_MERCHANT_KEY, TenantScopedMixin, membership_resolve
from apps.audit.services import security_event_record
from apps.portal.labels import ACTION_FAMILIES
from apps.portal.selectors import activity_page_for_merchant, dashboard_for_merchant


class LoginView(auth_views.LoginView):
    """Step one of two: email and password (with the lockout of
    apps.accounts.backends). Nobody is signed in yet: step two is a code from
    the authenticator app, or setting one up (apps.portal.account_views)."""

    template_name = "portal/login.html"
    redirect_authenticated_user = True
    form_class = LockoutAuthenticationForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["session_expired"] = self.request.session.pop("session_expired", False)
        return context

    def form_valid(self, form):
        return otp_login_begin(self.request, form.get_user(), next_url=self.get_success_url())


class PortalView(LoginRequiredMixin):
    """Every portal page: signed in, a member of the current merchant, and a
    role that carries `capability`."""

    capability = "view_dashboard"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = getattr(request, "membership", None)
        if membership is None:
            return render(request, "portal/no_merchant.html", status=403)
        if not membership.can(self.capability):
            security_event_record(
                kind="permission_denied",
                merchant=membership.merchant,
                actor=request.user,
                data={"path": request.path, "capability": self.capability, "role": membership.role},
                request=request,
            )
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class HomeView(PortalView, TemplateView):
    """The dashboard: today's sales, refunds and held payments, a 30-day
    volume chart, the terminals at a glance and (for owners and managers)
    the merchant's recent security events. Onboarding merchants see what to
    do next instead of empty figures."""

    template_name = "portal/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        membership = self.request.membership
        show_security = membership.can("view_activity") or membership.can("manage_staff")
        context.update(
            dashboard_for_merchant(
                merchant=membership.merchant, user=self.request.user, show_security=show_security
            ),
            show_security=show_security,
            can_view_transactions=membership.can("view_transactions"),
            can_manage_terminals=membership.can("manage_terminals"),
            can_manage_merchant=membership.can("manage_merchant"),
        )
        return context


class ActivityLogView(PortalView, TemplateView):
    """The owner's view of the shop's audit trail: every audited action of
    this merchant, newest first, keyset-paginated (?after=<cursor>), with an
    optional action family filter kept in the URL (?family=terminal)."""

    capability = "view_activity"
    template_name = "portal/activity.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        family = self.request.GET.get("family", "")
        if family not in ACTION_FAMILIES:
            family = ""
        page = activity_page_for_merchant(
            merchant=self.request.membership.merchant,
            family=family,
            after=self.request.GET.get("after", "")[:200],
        )
        context.update(page, family=family, families=list(ACTION_FAMILIES.items()))
        return context


class StaffListView(PortalView, TenantScopedMixin, ListView):
    capability = "manage_staff"
    model = Membership
    template_name = "portal/staff_list.html"
    context_object_name = "memberships"

    def refine_queryset(self, queryset):
        return queryset.select_related("user").order_by("created_at", "pk")


class StaffDetailView(PortalView, TenantScopedMixin, DetailView):
    capability = "manage_staff"
    model = Membership
    template_name = "portal/staff_detail.html"
    context_object_name = "membership_obj"
    slug_field = "public_id"
    slug_url_kwarg = "public_id"

    def refine_queryset(self, queryset):
        return queryset.select_related("user")


class MerchantSwitchView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        membership = membership_resolve(request.user, request.POST.get("merchant", ""))
        if membership is None or str(membership.merchant.public_id) != request.POST.get("merchant"):
            messages.error(request, _("You are not a member of that merchant."))
        else:
            request.session[SESSION_MERCHANT_KEY] = str(membership.merchant.public_id)
        return redirect("portal:home")
