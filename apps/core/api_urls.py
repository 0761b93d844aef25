"""/api/v1/: each app's API mounts here."""

from django.urls import include, path

urlpatterns = [
    path("merchant/", include("apps.accounts.api.urls")),
]
