"""Generated identities for tests and the demo: valid check digits over
made-up numbers, never a real person's or company's data."""

from __future__ import annotations

import datetime
import io

from PIL import Image
from stdnum.cn import ric, uscc

# 110101: 北京市东城区, a region code python-stdnum knows.
DEMO_REGION = "110101"


def generated_id_number(
    seq: int, *, birth_date: datetime.date = datetime.date(1990, 3, 7), region: str = DEMO_REGION
) -> str:
    """An 18-character resident ID number with a valid GB 11643 check digit."""
    body = f"{region}{birth_date:%Y%m%d}{seq % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # it reads the first 17 of 18


def generated_uscc(seq: int) -> str:
    """A unified social credit code with a valid GB 32100 check character."""
    body = f"9111010{seq % 10**10:010d}"
    return body + uscc.calc_check_digit(body)


def generated_phone(seq: int) -> str:
    return f"1990000{seq % 10000:04d}"


def generated_png(colour: str = "white", size: tuple[int, int] = (64, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()
