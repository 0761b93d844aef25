"""A system check that fails loudly when FIELD_ENCRYPTION_KEY cannot read
the encryption canary (runs with `check --database default` and `migrate`)."""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError


@checks.register(checks.Tags.database)
def field_key_check(app_configs, databases=None, **kwargs):  # type: ignore[no-untyped-def]
    if not databases or "default" not in databases:
        return []
    from apps.accounts.crypto import FieldKeyMismatch, field_key_verify

    try:
        field_key_verify()
    except FieldKeyMismatch as exc:
        return [
            checks.Critical(
                str(exc),
                hint="Set FIELD_ENCRYPTION_KEY to the key the data was written with.",
                id="accounts.E001",
            )
        ]
    except DatabaseError:
        return []  # tables not migrated yet: nothing encrypted to check
    return []
