"""Input checks for identity data: resident ID numbers (GB 11643), unified
social credit codes (GB 32100), phones and document images. Each failure is
an AccountsError with a specific message; nothing is saved before all pass."""

from __future__ import annotations

import datetime
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc

from apps.accounts.errors import AccountsError

_PHONE = re.compile(r"^1[3-9]\d{9}$")
ALLOWED_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
MAX_IMAGE_PIXELS = 40_000_000


# The province-level codes of GB/T 2260, the first two digits of every
# region code. Only these are checked: the other four name the county where
# the number was issued, which is often a district created or renumbered
# after the holder's birth (or since retired), and no table of "current"
# codes can judge them. 83: Taiwan residents' residence permits (2018),
# numbered like resident ID cards, as are Hong Kong's (81) and Macao's (82).
PROVINCE_CODES = {
    "11": "北京市",
    "12": "天津市",
    "13": "河北省",
    "14": "山西省",
    "15": "内蒙古自治区",
    "21": "辽宁省",
    "22": "吉林省",
    "23": "黑龙江省",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "34": "安徽省",
    "35": "福建省",
    "36": "江西省",
    "37": "山东省",
    "41": "河南省",
    "42": "湖北省",
    "43": "湖南省",
    "44": "广东省",
    "45": "广西壮族自治区",
    "46": "海南省",
    "50": "重庆市",
    "51": "四川省",
    "52": "贵州省",
    "53": "云南省",
    "54": "西藏自治区",
    "61": "陕西省",
    "62": "甘肃省",
    "63": "青海省",
    "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
    "71": "台湾省",
    "81": "香港特别行政区",
    "82": "澳门特别行政区",
    "83": "台湾地区（居住证）",
}
# The oldest birth year a living holder can have (the oldest recorded Chinese
# citizens were born in the 1880s).
EARLIEST_BIRTH_YEAR = 1850


def id_number_clean(
    value: str, *, field: str = "id_number", today: datetime.date | None = None
) -> str:
    """An 18-character resident ID number (GB 11643): its characters, its
    check digit, its birth date and its province; the message names the
    first that is wrong."""
    number = re.sub(r"[\s-]", "", value or "").upper()
    if not number:
        raise AccountsError(
            "id_number_required", _("The resident ID number is required."), field=field
        )
    if len(number) != 18:
        raise AccountsError(
            "invalid_id_number",
            _("A resident ID number has 18 characters; this one has %(n)s.") % {"n": len(number)},
            field=field,
        )
    if not re.fullmatch(r"\d{17}[\dX]", number):
        raise AccountsError(
            "invalid_id_number",
            _("A resident ID number is 17 digits followed by a digit or X."),
            field=field,
        )
    if number[-1] != ric.calc_check_digit(number):
        raise AccountsError(
            "invalid_id_number",
            _("The ID number's check digit is wrong (GB 11643); please check for a typo."),
            field=field,
        )
    try:
        born = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        born = None
    if born is None or born.year < EARLIEST_BIRTH_YEAR:
        raise AccountsError(
            "invalid_id_number",
            _("The ID number's birth date (digits 7 to 14: %(digits)s) is not a real date.")
            % {"digits": number[6:14]},
            field=field,
        )
    if born > (today or timezone.localdate()):
        raise AccountsError(
            "invalid_id_number",
            _("The ID number's birth date (%(date)s) is in the future.")
            % {"date": born.isoformat()},
            field=field,
        )
    if number[:2] not in PROVINCE_CODES:
        raise AccountsError(
            "invalid_id_number",
            _("The ID number's region code starts with %(code)s, which is no province (GB/T 2260).")
            % {"code": number[:2]},
            field=field,
        )
    return number


def uscc_clean(value: str, *, field: str = "uscc") -> str:
    code = re.sub(r"[\s-]", "", value or "").upper()
    if not code:
        raise AccountsError(
            "uscc_required", "The unified social credit code is required.", field=field
        )
    try:
        return uscc.validate(code)
    except stdnum_errors.InvalidLength:
        raise AccountsError(
            "invalid_uscc", "A unified social credit code has 18 characters.", field=field
        ) from None
    except stdnum_errors.InvalidFormat:
        raise AccountsError(
            "invalid_uscc",
            "A unified social credit code uses digits and capital letters except I, O, S, V, Z.",
            field=field,
        ) from None
    except stdnum_errors.InvalidChecksum:
        raise AccountsError(
            "invalid_uscc",
            "The credit code's check character is wrong (GB 32100); please check for a typo.",
            field=field,
        ) from None
    except stdnum_errors.ValidationError:
        raise AccountsError(
            "invalid_uscc", "This is not a valid unified social credit code.", field=field
        ) from None


def phone_clean(value: str, *, field: str = "phone") -> str:
    phone = re.sub(r"[\s-]", "", value or "")
    if phone.startswith("+86"):
        phone = phone[3:]
    if not _PHONE.match(phone):
        raise AccountsError(
            "invalid_phone", "Enter an 11-digit mainland mobile number.", field=field
        )
    return phone


def name_clean(value: str, *, field: str = "legal_name") -> str:
    name = (value or "").strip()
    if not name:
        raise AccountsError("name_required", "The legal name is required.", field=field)
    if len(name) > 100:
        raise AccountsError(
            "invalid_name", "The legal name is at most 100 characters.", field=field
        )
    return name


@dataclass(frozen=True)
class CleanDocument:
    data: bytes
    content_type: str


def document_clean(upload: Any, *, field: str) -> CleanDocument:
    """An uploaded image: present, at most KYC_DOCUMENT_MAX_BYTES, and really
    a JPEG or PNG (decoded by Pillow, not trusted by name or content type)."""
    if upload is None:
        raise AccountsError("document_required", "This document image is required.", field=field)
    limit = settings.KYC_DOCUMENT_MAX_BYTES
    if upload.size > limit:
        raise AccountsError(
            "document_too_large",
            f"The image is larger than {limit // (1024 * 1024)} MB.",
            field=field,
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise AccountsError(
            "document_too_large",
            f"The image is larger than {limit // (1024 * 1024)} MB.",
            field=field,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise AccountsError(
                        "document_not_image", "The image has too many pixels.", field=field
                    )
                image.verify()
    except AccountsError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ):
        raise AccountsError(
            "document_not_image", "The file is not a readable JPEG or PNG image.", field=field
        ) from None
    if image_format not in ALLOWED_IMAGE_FORMATS:
        raise AccountsError(
            "document_not_image", "Upload the document as a JPEG or PNG image.", field=field
        )
    return CleanDocument(data=data, content_type=ALLOWED_IMAGE_FORMATS[image_format])
