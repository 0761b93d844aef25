from django.contrib.auth import views as auth_views
from django.urls import path

from apps.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("merchant/switch/", views.MerchantSwitchView.as_view(), name="merchant-switch"),
    path("staff/", views.StaffListView.as_view(), name="staff-list"),
    path("staff/<uuid:public_id>/", views.StaffDetailView.as_view(), name="staff-detail"),
]
