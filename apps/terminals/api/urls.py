from django.urls import path

from apps.terminals.api import views

urlpatterns = [
    path("activate", views.ActivateView.as_view(), name="terminal-activate"),
    path("time", views.TimeView.as_view(), name="terminal-time"),
    path("ping", views.PingView.as_view(), name="terminal-ping"),
    path("config", views.ConfigView.as_view(), name="terminal-config"),
    path("keys/rotate", views.KeyRotateView.as_view(), name="terminal-key-rotate"),
    path("operators/sign-in", views.OperatorSignInView.as_view(), name="terminal-operator-sign-in"),
    path("heartbeat", views.HeartbeatView.as_view(), name="terminal-heartbeat"),
]
