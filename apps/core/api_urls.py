"""/api/v1/: each app's API mounts here."""

from django.conf import settings
from django.urls import include, path

urlpatterns = [
    path("merchant/", include("apps.accounts.api.urls")),
    path("wallet/", include("apps.accounts.api.wallet_urls")),
    path("terminal/", include("apps.terminals.api.urls")),
    path("terminal/", include("apps.transactions.api.urls")),
    path("wallet/", include("apps.transactions.api.wallet_urls")),
]

# bench/signing.py's unsigned twin of /api/v1/terminal/ping; off by default.
if settings.TERMINAL_BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/", include("apps.terminals.api.bench_urls")))
    urlpatterns.append(path("bench/", include("apps.transactions.api.bench_urls")))
