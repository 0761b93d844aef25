from __future__ import annotations

from django.db import models
from django.utils import timezone


class ScheduledRun(models.Model):
    """The last run of each periodic job, so a missed schedule is visible
    (the admin dashboard and the monitors' monitor read it)."""

    name = models.CharField(max_length=100, unique=True)
    last_run_at = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_run_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def record(cls, name: str) -> None:
        updated = cls.objects.filter(name=name).update(
            last_run_at=timezone.now(), runs=models.F("runs") + 1
        )
        if not updated:
            cls.objects.get_or_create(
                name=name, defaults={"last_run_at": timezone.now(), "runs": 1}
            )
