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

from apps.accounts.models import Membership
from apps.accounts.tenancy import SESSION_MERCHANT_KEY, TenantScopedMixin, membership_resolve
from apps.audit.services import security_event_record


class LoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["session_expired"] = self.request.session.pop("session_expired", False)
        return context


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
                kind="permission_denied", merchant=membership.merchant, actor=request.user,
                data={"path": request.path, "capability": self.capability, "role": membership.role},
                request=request,
            )
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class HomeView(PortalView, TemplateView):
    template_name = "portal/home.html"


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
