"""A portal session ends after 15 idle minutes, and 12 hours after sign-in
however busy it is (apps.core.middleware.SessionIdleTimeoutMiddleware,
SESSION_IDLE_SECONDS, SESSION_COOKIE_AGE)."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self, monkeypatch):
        self.now = time.time()
        monkeypatch.setattr("apps.core.middleware.time.time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def test_the_limits_are_fifteen_idle_minutes_and_twelve_hours():
    assert settings.SESSION_IDLE_SECONDS == 15 * 60
    assert settings.SESSION_COOKIE_AGE == 12 * 60 * 60


def test_a_session_idle_for_more_than_fifteen_minutes_is_signed_out(client, owner, clock):
    client.force_login(owner)
    assert client.get(reverse("portal:home")).status_code == 200

    clock.advance(15 * 60 + 1)
    response = client.get(reverse("portal:home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
    login_page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert "Your session expired after inactivity" in login_page.content.decode()


def test_a_request_within_fifteen_minutes_keeps_the_session(client, owner, clock):
    client.force_login(owner)
    client.get(reverse("portal:home"))
    for _ in range(4):
        clock.advance(14 * 60)
        assert client.get(reverse("portal:home")).status_code == 200


def test_a_busy_session_still_ends_twelve_hours_after_sign_in(client, owner, clock):
    client.force_login(owner)
    client.get(reverse("portal:home"))
    for _ in range(51):  # a request every 14 minutes: 11 h 54 min
        clock.advance(14 * 60)
        assert client.get(reverse("portal:home")).status_code == 200

    clock.advance(14 * 60)  # 12 h 08 min after sign-in
    response = client.get(reverse("portal:home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_the_session_cookie_itself_never_outlives_twelve_hours(client, owner):
    client.force_login(owner)
    response = client.get(reverse("portal:home"))
    cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie is not None:  # set again only when the session changed
        assert int(cookie["max-age"]) <= 12 * 60 * 60
    assert client.session.get_expiry_age() <= 12 * 60 * 60
