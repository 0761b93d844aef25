from django.contrib.auth import views as auth_views
from django.urls import path

from apps.portal import account_views, terminal_views, transaction_views, views
from apps.risk.portal_views import RiskHoldListView

app_name = "portal"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("activity/", views.ActivityLogView.as_view(), name="activity"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # accounts: OTP sign-in and step-up, sign-up, KYB, invitations, cashier PIN
    path("login/otp/", account_views.LoginOtpView.as_view(), name="login-otp"),
    path("login/otp/setup/", account_views.LoginOtpEnrolView.as_view(), name="login-otp-enrol"),
    path("signup/", account_views.SignupView.as_view(), name="signup"),
    path("account/security/", account_views.AccountSecurityView.as_view(), name="account-security"),
    path("account/otp/setup/", account_views.OtpEnrolView.as_view(), name="otp-enrol"),
    path("account/otp/confirm/", account_views.OtpStepUpView.as_view(), name="otp-step-up"),
    path("account/otp/backup-codes/", account_views.BackupCodesView.as_view(), name="otp-codes"),
    path("account/pin/", account_views.OperatorPinView.as_view(), name="operator-pin"),
    path("verification/", account_views.KybView.as_view(), name="kyb"),
    path("staff/invite/", account_views.StaffInviteView.as_view(), name="staff-invite"),
    path("invite/<str:token>/", account_views.InvitationAcceptView.as_view(), name="invite-accept"),
    path("merchant/switch/", views.MerchantSwitchView.as_view(), name="merchant-switch"),
    path("staff/", views.StaffListView.as_view(), name="staff-list"),
    path("staff/<uuid:public_id>/", views.StaffDetailView.as_view(), name="staff-detail"),
    path("terminals/", terminal_views.TerminalListView.as_view(), name="terminal-list"),
    path(
        "terminals/register/",
        terminal_views.TerminalRegisterView.as_view(),
        name="terminal-register",
    ),
    path(
        "terminals/<uuid:public_id>/",
        terminal_views.TerminalDetailView.as_view(),
        name="terminal-detail",
    ),
    path("holds/", RiskHoldListView.as_view(), name="risk-holds"),
    # transactions: list, detail, refund, statements (+ CSV), withdrawal
    path("transactions/", transaction_views.TransactionListView.as_view(), name="transaction-list"),
    path(
        "transactions/<uuid:public_id>/",
        transaction_views.TransactionDetailView.as_view(),
        name="transaction-detail",
    ),
    path(
        "transactions/<uuid:public_id>/refund/",
        transaction_views.TransactionRefundView.as_view(),
        name="transaction-refund",
    ),
    path("statements/", transaction_views.StatementListView.as_view(), name="statements"),
    path("statements/csv/", transaction_views.StatementCsvView.as_view(), name="statement-csv"),
    path("withdraw/", transaction_views.WithdrawView.as_view(), name="withdraw"),
    path(
        "terminals/<uuid:public_id>/<slug:action>/",
        terminal_views.TerminalActionView.as_view(),
        name="terminal-action",
    ),
]
