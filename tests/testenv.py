"""Loaded as a pytest plugin (pyproject's addopts), before Django reads its
settings: gives every test run its own random secrets, so no development
default is used and nothing secret is committed. A developer's environment
wins where it sets a value."""

import base64
import os
import secrets

_defaults = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "BLIND_INDEX_KEY": secrets.token_urlsafe(32),
    "PAYMENT_PIN_PEPPER": secrets.token_urlsafe(32),
    # Terminal API server keys (apps.terminals): raw 32-byte private keys, base64.
    "TERMINAL_SIGNING_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
    "TERMINAL_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
    # The test client speaks plain HTTP; production redirects to HTTPS.
    "SECURE_SSL_REDIRECT": "0",
    "STATIC_MANIFEST": "0",
    "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    # A run's cache keys (rate limits, nonces) never meet another run's.
    "CACHE_KEY_PREFIX": f"anfu-test-{secrets.token_hex(4)}",
    # Tasks run in the test's process; tests that need a real worker start one.
    "CELERY_TASK_ALWAYS_EAGER": "1",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
}
for _name, _value in _defaults.items():
    os.environ.setdefault(_name, _value)
