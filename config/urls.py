from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from apps.core.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/merchant/", include("apps.accounts.api.urls")),
    path("api/v1/wallet/", include("apps.accounts.api.wallet_urls")),
    path("api/v1/wallet/", include("apps.transactions.api.wallet_urls")),
    path("api/v1/terminal/", include("apps.terminals.api.urls")),
    path("api/v1/terminal/", include("apps.transactions.api.urls")),
    path("admin/", admin.site.urls),
    path("", include("apps.portal.urls")),
]

# KYC documents are PII: never served as static media, only through
# authenticated, audited views.
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
