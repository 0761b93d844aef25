"""Re-encrypts every encrypted value with the first FIELD_ENCRYPTION_KEY.

Rotation without downtime:
  1. FIELD_ENCRYPTION_KEY=new,old  (restart: new encrypts, both decrypt)
  2. manage.py rotate_field_key    (rewrites every row under the new key)
  3. FIELD_ENCRYPTION_KEY=new      (restart: the old key is gone)
The command refuses to run with a single key, and with --verify checks that
every value now decrypts with the first key alone.
"""

from __future__ import annotations

import cryptography.fernet
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from encrypted_model_fields.fields import EncryptedMixin

from apps.accounts.crypto import rotate_bytes


def _encrypted_fields() -> list[tuple[type, list[str]]]:
    found = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)]
        if names:
            found.append((model, names))
    return found


class Command(BaseCommand):
    help = "Re-encrypts PII and documents with the first FIELD_ENCRYPTION_KEY (run while old and new are both set)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--verify", action="store_true", help="only check that the first key reads everything"
        )

    def handle(self, *args, batch_size: int, verify: bool, **options):
        keys = settings.FIELD_ENCRYPTION_KEY
        if verify:
            return self.verify(keys[0] if isinstance(keys, list | tuple) else keys)
        if not isinstance(keys, list | tuple) or len(keys) < 2:
            raise CommandError(
                "Set FIELD_ENCRYPTION_KEY to 'new,old' first: rotation needs both keys."
            )
        total = 0
        from apps.accounts.models import EncryptionCanary, IdentityDocument

        for model, names in _encrypted_fields():
            pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(pks), batch_size):
                with transaction.atomic():
                    # Reading decrypts with any key; saving encrypts with the first.
                    for obj in model._default_manager.select_for_update().filter(
                        pk__in=pks[start : start + batch_size]
                    ):
                        obj.save(update_fields=names)
                        total += 1
        for doc_pk in IdentityDocument.objects.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                doc = IdentityDocument.objects.select_for_update().get(pk=doc_pk)
                doc.ciphertext = rotate_bytes(doc.ciphertext)
                doc.save(update_fields=["ciphertext"])
                total += 1
        for canary in EncryptionCanary.objects.all():
            canary.token = rotate_bytes(canary.token.encode()).decode()
            canary.save(update_fields=["token"])
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} rows with the first key."))
        self.verify(keys[0])

    def verify(self, first_key: str) -> None:
        from django.db import connection

        only_first = cryptography.fernet.Fernet(first_key)
        bad = 0
        from apps.accounts.models import EncryptionCanary, IdentityDocument

        for model, names in _encrypted_fields():
            table = connection.ops.quote_name(model._meta.db_table)
            columns = ", ".join(
                connection.ops.quote_name(model._meta.get_field(n).column) for n in names
            )
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {columns} FROM {table}")  # noqa: S608 (names from the model, not input)
                for row in cursor.fetchall():
                    for value in row:
                        bad += self._unreadable(only_first, value)
        for token in IdentityDocument.objects.values_list("ciphertext", flat=True).iterator():
            bad += self._unreadable(only_first, bytes(token))
        for token in EncryptionCanary.objects.values_list("token", flat=True):
            bad += self._unreadable(only_first, token)
        if bad:
            raise CommandError(f"{bad} values do not decrypt with the first key")
        self.stdout.write(self.style.SUCCESS("Every encrypted value decrypts with the first key."))

    @staticmethod
    def _unreadable(fernet: cryptography.fernet.Fernet, value: str | bytes | None) -> int:
        if value in (None, "", b""):
            return 0
        try:
            fernet.decrypt(value.encode() if isinstance(value, str) else value)
        except cryptography.fernet.InvalidToken:
            return 1
        return 0
