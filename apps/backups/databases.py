"""Database plumbing for backups: the dump as a stream (pg_dump with an
exported snapshot, or SQLite's online backup API), restore from a stream,
scratch databases and temporary connection aliases for the drill."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import dj_database_url
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

_SAFE_NAME = re.compile(r"^[a-z0-9_]+$")


class RestoreFailed(Exception):
    pass


def engine_of(cfg: dict) -> str:
    engine = cfg["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise ValueError(f"backups support PostgreSQL and SQLite, not {engine}")


def live_config() -> dict:
    return connections[DEFAULT_DB_ALIAS].settings_dict


def config_from_url(url: str) -> dict:
    cfg = dict(dj_database_url.parse(url))
    engine_of(cfg)
    return cfg


def same_database(a: dict, b: dict) -> bool:
    if engine_of(a) != engine_of(b):
        return False
    if engine_of(a) == "sqlite":
        return _sqlite_path(a) == _sqlite_path(b)
    host = lambda c: (c.get("HOST") or "localhost").replace("127.0.0.1", "localhost")  # noqa: E731
    return (host(a), str(a.get("PORT") or 5432), a["NAME"]) == (
        host(b),
        str(b.get("PORT") or 5432),
        b["NAME"],
    )


def _sqlite_path(cfg: dict) -> Path:
    # "file:name?mode=memory" (a URI name, as in tests) and "name" are one database.
    name = str(cfg["NAME"])
    if name.startswith("file:"):
        name = name[len("file:") :].split("?", 1)[0]
    return Path(name).resolve()


def _pg_bin(name: str) -> str:
    return str(Path(settings.BACKUP_PG_BIN_DIR) / name) if settings.BACKUP_PG_BIN_DIR else name


def pg_env(cfg: dict) -> dict[str, str]:
    # The password travels in the child's environment, never on its command line.
    env = dict(os.environ)
    for var, key in (
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
    ):
        if cfg.get(key):
            env[var] = str(cfg[key])
    env["PGDATABASE"] = str(cfg["NAME"])
    options = cfg.get("OPTIONS") or {}
    if options.get("sslmode"):
        env["PGSSLMODE"] = options["sslmode"]
    return env


def _row_counts(conn: BaseDatabaseWrapper, cursor: Any) -> dict[str, int]:
    counts = {}
    for table in sorted(conn.introspection.table_names(cursor)):
        cursor.execute(f"SELECT COUNT(*) FROM {conn.ops.quote_name(table)}")  # noqa: S608 (catalog names)
        counts[table] = int(cursor.fetchone()[0])
    return counts


def row_counts(alias: str) -> dict[str, int]:
    conn = connections[alias]
    with conn.cursor() as cursor:
        return _row_counts(conn, cursor)


@dataclass
class DumpStream:
    """An open dump: `stream` yields the dump's bytes; `row_counts` are those
    of the snapshot being dumped; `close()` checks the dumper's exit."""

    stream: IO[bytes]
    row_counts: dict[str, int]
    _cleanup: list = field(default_factory=list)

    def close(self) -> None:
        errors = []
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))


def dump_open(cfg: dict | None = None) -> DumpStream:
    cfg = cfg or live_config()
    if engine_of(cfg) == "postgresql":
        return _pg_dump_open(cfg)
    return _sqlite_dump_open()


def _pg_dump_open(cfg: dict) -> DumpStream:
    # Row counts and the dump read one exported snapshot, so the counts in the
    # catalog are exactly what the artifact holds, even under live writes.
    conn = connections.create_connection(DEFAULT_DB_ALIAS)
    conn.settings_dict = {
        **conn.settings_dict,
        **{k: cfg[k] for k in ("NAME", "HOST", "PORT", "USER", "PASSWORD")},
    }
    conn.ensure_connection()
    conn.set_autocommit(False)
    cursor = conn.cursor()
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    cursor.execute("SELECT pg_export_snapshot()")
    snapshot = cursor.fetchone()[0]
    counts = _row_counts(conn, cursor)
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the dump finishes)
    proc = subprocess.Popen(  # noqa: S603
        [
            _pg_bin("pg_dump"),
            "--format=custom",
            "--compress=0",
            f"--snapshot={snapshot}",
            "--no-password",
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=pg_env(cfg),
        bufsize=1024 * 1024,
    )

    def finish() -> None:
        # Closing our end first: a dumper we stopped reading (an error
        # downstream) gets SIGPIPE and exits instead of blocking forever.
        assert proc.stdout is not None
        proc.stdout.close()
        try:
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if code != 0:
                stderr.seek(0)
                raise RuntimeError(
                    f"pg_dump exited {code}: {stderr.read()[-2000:].decode(errors='replace')}"
                )
        finally:
            stderr.close()
            conn.rollback()
            conn.close()

    assert proc.stdout is not None
    return DumpStream(proc.stdout, counts, [finish])


def _sqlite_dump_open() -> DumpStream:
    # The online backup API copies a consistent image of the live database
    # (the same connection, so even a test's in-memory database works).
    conn = connections[DEFAULT_DB_ALIAS]
    conn.ensure_connection()
    tmpdir = Path(tempfile.mkdtemp(prefix="anfu-backup-"))
    copy_path = tmpdir / "snapshot.sqlite3"
    target = sqlite3.connect(copy_path)
    try:
        conn.connection.backup(target)
        cursor = target.cursor()
        tables = [
            r[0]
            for r in cursor.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        counts = {t: cursor.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
    finally:
        target.close()
    stream = open(copy_path, "rb")  # noqa: SIM115 (closed by DumpStream.close)
    return DumpStream(
        stream, counts, [lambda: shutil.rmtree(tmpdir, ignore_errors=True), stream.close]
    )


@contextlib.contextmanager
def restore_sink(cfg: dict) -> Iterator[IO[bytes]]:
    """A writable stream that restores a dump into `cfg`'s database. Leaving
    the block without error commits the restore; an error leaves the target
    untouched (pg_restore runs as one transaction; SQLite renames at the end)."""
    if engine_of(cfg) == "postgresql":
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(  # noqa: S603
            [
                _pg_bin("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--no-password",
                f"--dbname={cfg['NAME']}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=pg_env(cfg),
            bufsize=1024 * 1024,
        )
        assert proc.stdin is not None

        def failure() -> RestoreFailed | None:
            code = proc.wait()
            if code == 0:
                return None
            stderr.seek(0)
            return RestoreFailed(
                f"pg_restore exited {code}: {stderr.read()[-2000:].decode(errors='replace')}"
            )

        try:
            try:
                yield proc.stdin
            except Exception as exc:
                if getattr(exc, "refuses_artifact", False):
                    # A bad artifact: stop pg_restore before it commits.
                    proc.kill()
                    raise
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                # Usually pg_restore stopped first (and our write failed):
                # its own message is the useful one.
                restore_error = failure()
                if restore_error is not None:
                    raise restore_error from exc
                raise
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            restore_error = failure()
            if restore_error is not None:
                raise restore_error
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            stderr.close()
        return
    path = Path(str(cfg["NAME"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".restoring")
    try:
        with open(partial, "wb") as out:
            yield out
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def scratch_database_create() -> dict:
    """A new, empty database next to the live one, for drills."""
    live = live_config()
    name = f"{settings.BACKUP_SCRATCH_DB_PREFIX}{secrets.token_hex(4)}"
    if not _SAFE_NAME.match(name):
        raise ValueError("BACKUP_SCRATCH_DB_PREFIX must be lower-case letters, digits and _")
    if engine_of(live) == "sqlite":
        return {
            **live,
            "NAME": str(Path(tempfile.mkdtemp(prefix="anfu-drill-")) / f"{name}.sqlite3"),
        }
    server = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with server.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        server.close()
    return {**live, "NAME": name}


def scratch_database_drop(cfg: dict) -> None:
    name = str(cfg["NAME"])
    if engine_of(cfg) == "sqlite":
        shutil.rmtree(Path(name).parent, ignore_errors=True)
        return
    if not name.startswith(settings.BACKUP_SCRATCH_DB_PREFIX) or not _SAFE_NAME.match(name):
        raise ValueError(f"refusing to drop {name!r}: not a scratch database")
    server = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with server.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        server.close()


@contextlib.contextmanager
def temporary_alias(cfg: dict) -> Iterator[str]:
    """Opens `cfg` under a temporary Django alias for the block, so selectors
    that take `using=` can check a restored copy. The alias is not added to
    DATABASES: it exists only on this thread, and only for the block."""
    alias = f"backup_check_{secrets.token_hex(4)}"
    keys = ("ENGINE", "NAME", "HOST", "PORT", "USER", "PASSWORD")
    settings_dict = {**live_config(), **{k: cfg[k] for k in keys if k in cfg}, "CONN_MAX_AGE": 0}
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    connections[alias] = wrapper
    try:
        yield alias
    finally:
        wrapper.close()
        del connections[alias]
