"""Input checks for identity data: resident ID numbers (GB 11643), unified
social credit codes (GB 32100), phones and document images. Each failure is
an AccountsError with a specific message; nothing is saved before all pass."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from PIL import Image, UnidentifiedImageError
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc

from apps.accounts.errors import AccountsError

_PHONE = re.compile(r"^1[3-9]\d{9}$")
ALLOWED_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
MAX_IMAGE_PIXELS = 40_000_000


def id_number_clean(value: str, *, field: str = "id_number") -> str:
    number = re.sub(r"[\s-]", "", value or "").upper()
    if not number:
        raise AccountsError(
            "id_number_required", "The resident ID number is required.", field=field
        )
    if len(number) == 18 and not re.fullmatch(r"\d{17}[\dX]", number):
        raise AccountsError(
            "invalid_id_number",
            "A resident ID number is 17 digits followed by a digit or X.",
            field=field,
        )
    try:
        return ric.validate(number)
    except stdnum_errors.InvalidLength:
        raise AccountsError(
            "invalid_id_number", "A resident ID number has 18 characters.", field=field
        ) from None
    except stdnum_errors.InvalidFormat:
        raise AccountsError(
            "invalid_id_number",
            "A resident ID number is 17 digits followed by a digit or X.",
            field=field,
        ) from None
    except stdnum_errors.InvalidChecksum:
        raise AccountsError(
            "invalid_id_number",
            "The ID number's check digit is wrong (GB 11643); please check for a typo.",
            field=field,
        ) from None
    except stdnum_errors.InvalidComponent:
        raise AccountsError(
            "invalid_id_number",
            "The ID number encodes an impossible birth date or an unknown region.",
            field=field,
        ) from None


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
