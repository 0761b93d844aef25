"""The product's URLs and the bench's own."""

from django.urls import path

from bench.views import BareTransferView
from config.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    path("bench/transfer", BareTransferView.as_view(), name="bench-transfer"),
    *product_urlpatterns,
]
