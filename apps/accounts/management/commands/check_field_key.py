"""Fails (exit 1) when FIELD_ENCRYPTION_KEY cannot read the encryption
canary: run it at deploy, before serving, so a wrong key stops the rollout."""

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.crypto import FieldKeyMismatch, field_key_verify


class Command(BaseCommand):
    help = "Checks that FIELD_ENCRYPTION_KEY decrypts the data in the database."

    def handle(self, *args, **options):
        try:
            field_key_verify()
        except FieldKeyMismatch as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS("FIELD_ENCRYPTION_KEY reads the encryption canary."))
