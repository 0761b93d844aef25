from django.urls import path

from apps.accounts.api import views

app_name = "accounts-api"

urlpatterns = [
    path("staff/", views.StaffListApi.as_view(), name="staff-list"),
    path("staff/<uuid:public_id>", views.StaffDetailApi.as_view(), name="staff-detail"),
]
