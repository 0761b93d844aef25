"""Backup fixtures: a fresh age key pair per test, a filesystem target in a
temporary directory and an S3-compatible target on a real HTTP endpoint
(moto's server, started once per run on 127.0.0.1)."""

from __future__ import annotations

import secrets
import socket

import boto3
import pytest
from pyrage import x25519

from apps.backups.models import BackupPolicy, BackupTarget

S3_ENV = "BACKUP_S3_TEST"


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def age_identity():
    return x25519.Identity.generate()


@pytest.fixture
def backup_env(settings, tmp_path, age_identity):
    """Settings of a host that both backs up and restores (a drill host)."""
    settings.BACKUP_AGE_RECIPIENTS = [str(age_identity.to_public())]
    settings.BACKUP_AGE_IDENTITY = str(age_identity)
    settings.BACKUP_AGE_IDENTITY_FILE = ""
    settings.BACKUP_TARGETS = []
    settings.BACKUP_SPOOL_DIR = tmp_path / "spool"
    settings.BACKUP_SCRATCH_DB_PREFIX = f"anfu_restore_{secrets.token_hex(3)}_"
    return settings


@pytest.fixture
def fs_target(db, tmp_path):
    return BackupTarget.objects.create(
        name="local-disk",
        kind=BackupTarget.Kind.FILESYSTEM,
        path=str(tmp_path / "fs-target"),
        priority=10,
    )


@pytest.fixture
def s3_target(db, s3_endpoint, monkeypatch):
    # Test-only keys, given the way production gets them: from the environment.
    monkeypatch.setenv(f"{S3_ENV}_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv(f"{S3_ENV}_SECRET_ACCESS_KEY", "testing")
    bucket = f"anfu-backups-{secrets.token_hex(4)}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    return BackupTarget.objects.create(
        name="object-store",
        kind=BackupTarget.Kind.S3,
        bucket=bucket,
        prefix="anfu/",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        credentials_env=S3_ENV,
        priority=20,
    )


@pytest.fixture
def policy(db):
    return BackupPolicy.load()


@pytest.fixture
def scratch_db(backup_env):
    """An empty scratch database (PostgreSQL or SQLite), dropped afterwards."""
    from apps.backups import databases

    cfg = databases.scratch_database_create()
    yield cfg
    databases.scratch_database_drop(cfg)


def database_url(cfg: dict) -> str:
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{cfg['NAME']}"
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    return f"postgres://{cfg['USER']}{password}@{cfg['HOST'] or 'localhost'}:{cfg['PORT'] or 5432}/{cfg['NAME']}"


def table_contents(alias: str) -> dict[str, list[str]]:
    """Every table's rows, as sorted reprs: equal dicts mean equal data."""
    from django.db import connections

    conn = connections[alias]
    with conn.cursor() as cursor:
        tables = conn.introspection.table_names(cursor)
        contents = {}
        for table in tables:
            cursor.execute(f"SELECT * FROM {conn.ops.quote_name(table)}")  # noqa: S608
            contents[table] = sorted(repr(row) for row in cursor.fetchall())
    return contents


def seed_business_data():
    """Merchants, staff, a shop, payers and ledger entries (top-ups and a
    payment), with their audit records."""
    from apps.core.money import Money
    from apps.transactions.services import ledger_payment_transfer, wallet_top_up
    from tests.accounts.factories import (
        MembershipFactory,
        MerchantFactory,
        PayerFactory,
        ShopFactory,
    )

    merchant = MerchantFactory(name="青柠咖啡")
    MembershipFactory(merchant=merchant, role="owner")
    ShopFactory(merchant=merchant)
    payers = [PayerFactory() for _ in range(3)]
    for payer in payers:
        wallet_top_up(payer=payer, amount=Money(50_000), reason="test funding", actor="system")
    ledger_payment_transfer(
        payer=payers[0], merchant=merchant, amount=Money(12_345), event=("test.sale", "s-1")
    )
    return merchant
