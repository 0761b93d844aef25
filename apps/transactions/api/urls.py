"""Mounted under /api/v1/terminal/ next to apps.terminals.api.urls."""

from django.urls import path

from apps.transactions.api import views

urlpatterns = [
    path("payments", views.PaymentCreateView.as_view(), name="terminal-payment-create"),
    path("payments/<uuid:public_id>", views.PaymentDetailView.as_view(), name="terminal-payment"),
    path(
        "payments/<uuid:public_id>/confirm",
        views.PaymentConfirmView.as_view(),
        name="terminal-payment-confirm",
    ),
    path(
        "payments/<uuid:public_id>/refunds",
        views.RefundCreateView.as_view(),
        name="terminal-payment-refund",
    ),
    path("reversals", views.ReversalCreateView.as_view(), name="terminal-reversal"),
    path("batches/close", views.BatchCloseView.as_view(), name="terminal-batch-close"),
]
