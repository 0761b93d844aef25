from django.core.management.base import BaseCommand, CommandError

from apps.audit.models import AuditRecord
from apps.audit.services import audit_chain_verify


class Command(BaseCommand):
    help = "Verifies the audit trail's hash chains; exits non-zero on any edited or deleted record."

    def handle(self, *args, **options):
        problems = audit_chain_verify()
        if problems:
            for problem in problems:
                self.stderr.write(str(problem))
            raise CommandError(f"audit chain broken: {len(problems)} problem(s)")
        self.stdout.write(
            self.style.SUCCESS(f"audit chain intact ({AuditRecord.objects.count()} records)")
        )
