"""How PII looks where it must not be read in clear: to merchants (DESIGN.md
§1: `张*`, `****1234`) and in the admin until a reviewer reveals it."""

from __future__ import annotations


def mask_name(name: str) -> str:
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)


def mask_tail(value: str, keep: int = 4) -> str:
    if not value:
        return ""
    return "****" + value[-keep:]


def mask_phone(phone: str) -> str:
    if len(phone) < 7:
        return mask_tail(phone)
    return phone[:3] + "****" + phone[-4:]
