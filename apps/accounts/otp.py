"""The TOTP enrolment QR code as inline SVG markup (no script, no data
URL needed, so the strict CSP stays as it is)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from django_otp.plugins.otp_totp.models import TOTPDevice


def totp_qr_svg(device: TOTPDevice) -> str:
    image = qrcode.make(
        device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2
    )
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    # Drop the XML declaration so the markup can sit inside HTML.
    return svg[svg.index("<svg") :]


def totp_secret_b32(device: TOTPDevice) -> str:
    """The key as base32, for typing into an app that cannot scan."""
    import base64

    return base64.b32encode(device.bin_key).decode().rstrip("=")
