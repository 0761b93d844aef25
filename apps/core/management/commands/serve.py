from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.core.scheduler import EmbeddedBeat
from config.celery import app


class Command(BaseCommand):
    help = "Serves the platform; without a broker it also runs the beat schedule in-process."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        if not settings.CELERY_BROKER_URL:
            EmbeddedBeat(app).start()
            self.stdout.write("Periodic jobs run in-process (no REDIS_URL).")
        call_command("runserver", addrport, use_reloader=False)
