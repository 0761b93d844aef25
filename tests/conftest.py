"""Shared fixtures. The cast: `merchant` with its `owner`, `cashier`; an
`other_merchant` with its own owner (`outsider`, from our merchant's view)."""

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.accounts.factories import MembershipFactory, MerchantFactory, UserFactory

ON_POSTGRES = settings.USING_POSTGRES
ON_REDIS = bool(settings.REDIS_URL)


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    skip_redis = pytest.mark.skip(reason="needs Redis (set REDIS_URL)")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not ON_REDIS:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    # The product defaults to zh-hans; tests read English messages unless
    # they ask for a language (Accept-Language, a browser locale).
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters and replay caches must not leak between tests.
    cache.clear()


@pytest.fixture
def merchant(db):
    return MerchantFactory(name="青柠咖啡")


@pytest.fixture
def owner(merchant):
    return MembershipFactory(merchant=merchant, role="owner").user


@pytest.fixture
def cashier(merchant):
    return MembershipFactory(merchant=merchant, role="cashier").user


@pytest.fixture
def other_merchant(db):
    return MerchantFactory(name="山海书店")


@pytest.fixture
def outsider(other_merchant):
    return MembershipFactory(merchant=other_merchant, role="owner").user


@pytest.fixture
def compliance(db):
    return UserFactory(is_staff=True, is_superuser=True, email="compliance@example.test")


@pytest.fixture
def staff_client(client, compliance):
    """A test client signed in to the admin as `compliance`, OTP verified."""
    from tests.accounts.helpers import otp_force_login

    otp_force_login(client, compliance)
    return client
