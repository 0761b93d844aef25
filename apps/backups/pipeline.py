"""The streaming pipeline: dump → zstd → age → SHA-256 → spool file, and
back: artifact → age → zstd → restore. pyrage pulls from a reader and pushes
64 KiB chunks into a writer, so nothing ever holds the whole dump."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO

import pyrage
import zstandard
from pyrage import x25519

CHUNK = 1024 * 1024


class ArtifactRefused(Exception):
    """The artifact cannot be used: wrong key, tampered or truncated."""

    refuses_artifact = True


class ReplicaCorrupt(ArtifactRefused):
    """This copy differs from what was written: another copy may be good."""


class WrongKey(ArtifactRefused):
    """The copy is intact but no configured identity opens it."""


class _CountingReader:
    def __init__(self, raw: IO[bytes], on_progress: Callable[[int], None] | None = None) -> None:
        self.raw, self.count, self.on_progress = raw, 0, on_progress

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size if size and size > 0 else CHUNK)
        self.count += len(chunk)
        if self.on_progress is not None:
            self.on_progress(self.count)
        return chunk

    def readable(self) -> bool:
        return True


class _HashingWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest, self.count = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.count += len(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


class _NullWriter:
    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def encrypt_to_file(
    source: IO[bytes], spool: Path, recipients: list[str], *, level: int = 3
) -> tuple[str, int, int]:
    """Compresses and encrypts `source` into `spool`; returns (sha256 of the
    encrypted file, its size, the plain dump's size)."""
    counted = _CountingReader(source)
    compressed = zstandard.ZstdCompressor(level=level).stream_reader(
        counted,  # type: ignore[arg-type]  # duck-typed: zstandard only calls read()
        read_size=CHUNK,
    )
    parsed = [x25519.Recipient.from_str(r) for r in recipients]
    with open(spool, "wb") as out:
        writer = _HashingWriter(out)
        pyrage.encrypt_io(compressed, writer, parsed)
        writer.flush()
    return writer.digest.hexdigest(), writer.count, counted.count


class _SizeCapture:
    """Tees the artifact through SHA-256 as it is decrypted."""

    def __init__(self, raw: BinaryIO, on_progress: Callable[[int], None] | None = None) -> None:
        self.reader = _CountingReader(raw, on_progress)
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.reader.read(size)
        self.digest.update(chunk)
        return chunk

    def readable(self) -> bool:
        return True


def _decrypt(
    stream: BinaryIO, sink: IO[bytes], identities: list[x25519.Identity], on_progress=None
) -> tuple[str, int]:
    source = _SizeCapture(stream, on_progress)
    decompressor = zstandard.ZstdDecompressor().stream_writer(
        sink, write_return_read=True, closefd=False
    )
    try:
        pyrage.decrypt_io(source, decompressor, identities)
        decompressor.flush()
    except BrokenPipeError:
        raise  # the restorer stopped reading; its own error says why
    except (pyrage.DecryptError, OSError) as exc:
        # pyrage reports a bad header as DecryptError and a chunk that fails
        # authentication (tampering, truncation) as OSError "decryption error".
        # Read the rest so the caller can tell a damaged copy (checksum
        # differs) from an intact one that this key cannot open.
        while source.read(CHUNK):
            pass
        message = str(exc)
        error: ArtifactRefused = (
            WrongKey("none of the configured identities can decrypt this backup (wrong key)")
            if "No matching keys" in message
            else ArtifactRefused(
                f"the artifact does not decrypt ({message}): tampered or truncated"
            )
        )
        error.sha256 = source.digest.hexdigest()  # type: ignore[attr-defined]
        raise error from exc
    except zstandard.ZstdError as exc:
        raise ArtifactRefused(f"the decrypted stream is not a complete zstd frame ({exc})") from exc
    return source.digest.hexdigest(), source.reader.count


def artifact_check(
    stream: BinaryIO, identities: list[x25519.Identity], expected_sha256: str
) -> int:
    """Reads the whole artifact once without writing anything anywhere:
    checksum, key, authentication of every age chunk, a complete zstd frame.
    Returns the plain size; raises ArtifactRefused."""
    null = _NullWriter()
    try:
        sha, _size = _decrypt(stream, null, identities)  # type: ignore[arg-type]
    except ArtifactRefused as exc:
        sha = getattr(exc, "sha256", "")
        if sha and sha != expected_sha256:
            raise ReplicaCorrupt(_mismatch(expected_sha256, sha)) from exc
        raise
    finally:
        stream.close()
    if sha != expected_sha256:
        raise ReplicaCorrupt(_mismatch(expected_sha256, sha))
    return null.count


def _mismatch(expected: str, found: str) -> str:
    return f"checksum mismatch: the catalog says {expected[:16]}, this copy is {found[:16]} (tampered or truncated)"


def decrypt_into(
    stream: BinaryIO, sink: IO[bytes], identities, *, total: int | None, progress=None
) -> None:
    """Decrypts and decompresses into `sink`, reporting progress at most
    every two seconds."""
    last = [0.0]

    def report(done: int) -> None:
        now = time.monotonic()
        if progress is not None and now - last[0] >= 2:
            last[0] = now
            progress(done, total)

    try:
        _decrypt(stream, sink, identities, report)
    finally:
        stream.close()
    if progress is not None:
        progress(total or 0, total)
