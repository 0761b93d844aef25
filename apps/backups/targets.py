"""The two kinds of backup target behind one small interface: write a local
file as `key`, open `key` as a stream, delete it. Everything streams in
bounded chunks, so memory stays flat whatever the artifact's size."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

from apps.backups.models import BackupTarget

CHUNK = 1024 * 1024


class TargetStore(Protocol):
    def put_file(self, source: Path, key: str) -> None: ...
    def put_bytes(self, data: bytes, key: str) -> None: ...
    def open(self, key: str) -> BinaryIO: ...
    def delete(self, key: str) -> None: ...


def stream_sha256(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class FilesystemStore:
    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} escapes the target directory")
        return path

    def _write(self, key: str, write) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        # A reader never sees a half-written artifact under its final name.
        partial.replace(path)

    def put_file(self, source: Path, key: str) -> None:
        def copy(out):
            with open(source, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)

        self._write(key, copy)

    def put_bytes(self, data: bytes, key: str) -> None:
        self._write(key, lambda out: out.write(data))

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    def __init__(self, target: BackupTarget) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        prefix = target.credentials_env or "BACKUP_S3"
        self.bucket = target.bucket
        self.self_hosted = bool(target.endpoint_url)
        self.client = boto3.client(
            "s3",
            endpoint_url=target.endpoint_url or None,
            region_name=target.region or None,
            # None falls back to boto3's own chain (instance role, AWS_* variables).
            aws_access_key_id=os.environ.get(f"{prefix}_ACCESS_KEY_ID") or None,
            aws_secret_access_key=os.environ.get(f"{prefix}_SECRET_ACCESS_KEY") or None,
            config=Config(
                s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}
            ),
        )
        # Two 16 MB parts in flight at most: bounded memory on big artifacts.
        self.transfer = TransferConfig(
            multipart_threshold=64 * CHUNK, multipart_chunksize=16 * CHUNK, max_concurrency=2
        )

    def put_file(self, source: Path, key: str) -> None:
        if self.self_hosted:
            self._bucket_ensure()
        self.client.upload_file(str(source), self.bucket, key, Config=self.transfer)

    def _bucket_ensure(self) -> None:
        # A fresh self-hosted store (compose's MinIO) has no bucket yet. On
        # AWS (no endpoint) a missing bucket is a misconfiguration to alert
        # on, not something to paper over with a new bucket.
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            self.client.create_bucket(Bucket=self.bucket)

    def put_bytes(self, data: bytes, key: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def store_for(target: BackupTarget) -> TargetStore:
    if target.kind == BackupTarget.Kind.FILESYSTEM:
        return FilesystemStore(target.path)
    return S3Store(target)


def object_key(target: BackupTarget, name: str) -> str:
    return f"{target.prefix}{name}" if target.kind == BackupTarget.Kind.S3 else name


def target_from_url(url: str, index: int) -> dict:
    """`file:///srv/backups` or `s3://bucket/prefix/?endpoint=...&region=...&credentials=ENV_PREFIX&name=...`
    (credentials name an environment prefix; keys in a URL are refused)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.username or parts.password:
        raise ValueError("BACKUP_TARGETS must not carry credentials; use BACKUP_S3_* variables")
    if parts.scheme == "file":
        fields = {"kind": BackupTarget.Kind.FILESYSTEM, "path": parts.path}
    elif parts.scheme == "s3":
        prefix = parts.path.lstrip("/")
        fields = {
            "kind": BackupTarget.Kind.S3,
            "bucket": parts.netloc,
            "prefix": prefix if not prefix or prefix.endswith("/") else prefix + "/",
            "endpoint_url": query.get("endpoint", ""),
            "region": query.get("region", ""),
            "credentials_env": query.get("credentials", "BACKUP_S3"),
        }
    else:
        raise ValueError(f"BACKUP_TARGETS entry {index + 1}: use file:// or s3://")
    fields["name"] = query.get("name") or f"env-{index + 1}-{fields['kind']}"
    return fields
