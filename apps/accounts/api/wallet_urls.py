from django.urls import path

from apps.accounts.api import wallet_views as views

app_name = "wallet-api"

urlpatterns = [
    path("register", views.RegisterApi.as_view(), name="register"),
    path("login", views.LoginApi.as_view(), name="login"),
    path("logout", views.LogoutApi.as_view(), name="logout"),
    path("status", views.StatusApi.as_view(), name="status"),
    path("kyc", views.KycApi.as_view(), name="kyc"),
    path("otp/enrol", views.OtpEnrolApi.as_view(), name="otp-enrol"),
    path("otp/confirm", views.OtpConfirmApi.as_view(), name="otp-confirm"),
    path("payment-password", views.PaymentPasswordApi.as_view(), name="payment-password"),
    path("payment-codes", views.PaymentCodeApi.as_view(), name="payment-codes"),
]
