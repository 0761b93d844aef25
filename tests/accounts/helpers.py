"""Test helpers for OTP and identity data (generated, never real people's)."""

from __future__ import annotations

import time

from django.core.files.uploadedfile import SimpleUploadedFile
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services
from apps.accounts.stepup import STEP_UP_SESSION_KEY
from apps.accounts.testdata import (
    generated_id_number,
    generated_phone,
    generated_png,
    generated_uscc,
)
from apps.accounts.validation import document_clean
from tests.accounts.factories import TEST_PASSWORD


def otp_device(user) -> TOTPDevice:
    """A confirmed TOTP device for `user`."""
    return TOTPDevice.objects.create(user=user, name="test", confirmed=True)


def otp_code(device: TOTPDevice) -> str:
    """The device's current code. Forgets the last used time step first, so
    a test can verify more than once within one 30-second step."""
    TOTPDevice.objects.filter(pk=device.pk).update(
        last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None
    )
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():06d}"


def otp_force_login(client, user, *, step_up: bool = True) -> TOTPDevice:
    """Signs `user` in with an OTP-verified session (what the two-step login
    leaves behind), e.g. for admin pages. Reuse it where an OTP-required page
    is under test."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or otp_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    if step_up:
        session[STEP_UP_SESSION_KEY] = int(time.time())
    session.save()
    return device


def png_upload(name: str = "doc.png", colour: str = "white") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, generated_png(colour), content_type="image/png")


def person(seq: int = 1, *, legal_name: str = "测试张三", **kwargs) -> services.PersonInput:
    return services.person_clean(
        legal_name=legal_name,
        id_number=kwargs.get("id_number", generated_id_number(seq)),
        phone=kwargs.get("phone", generated_phone(seq)),
        id_front=document_clean(png_upload("front.png"), field="id_front"),
        id_back=document_clean(png_upload("back.png"), field="id_back"),
    )


def kyb_submit_for(
    merchant, owner, *, seq: int = 1, rep_seq: int | None = None, uscc: str | None = None
):
    from decimal import Decimal

    return services.kyb_submit(
        merchant=merchant,
        actor=owner,
        company_name=f"测试公司{seq}",
        uscc=uscc or generated_uscc(seq),
        mcc="5814",
        registered_address="北京市东城区测试路1号",
        licence=document_clean(png_upload("lic.png"), field="licence"),
        legal_rep=person(rep_seq if rep_seq is not None else seq),
        shops=[
            services.ShopInput(
                name="测试店",
                address="北京市东城区测试路1号",
                latitude=Decimal("39.9"),
                longitude=Decimal("116.4"),
            )
        ],
    )


__all__ = [
    "TEST_PASSWORD",
    "kyb_submit_for",
    "otp_code",
    "otp_device",
    "otp_force_login",
    "person",
    "png_upload",
]
