"""Strict environment parsing: a malformed value stops the process at start.

Secrets never have a silent production default. A secret left at its
development value is accepted only when DEBUG is on; settings.py refuses it
otherwise (see ``refuse_dev_secrets``).
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Set by manage.py for commands that read only code (makemigrations, ...);
# a module flag, not an environment variable, so no deployment can set it.
code_only_command = False


class DevSecrets:
    """Collects the secrets that fell back to their development values."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def get(self, name: str, dev_value: str) -> str:
        value = os.environ.get(name)
        if value:
            if value == dev_value:
                self.used.append(name)
            return value
        self.used.append(name)
        return dev_value

    def refuse_unless(self, debug: bool) -> None:
        if self.used and not debug and not code_only_command:
            names = ", ".join(sorted(set(self.used)))
            raise ImproperlyConfigured(
                f"Refusing to start with DEBUG off and development secrets for: {names}. "
                "Set them in the environment."
            )
