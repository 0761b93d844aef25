"""Plain SQL for the few hot paths (a payment), with the ORM's own types.

A payment makes a handful of reads and writes that the ORM would send one
statement at a time, compiling each on every call (its compile costs a
payment more CPU than the database takes to answer). Here:

- `RowReader` reads model instances out of one hand-written SELECT that
  joins several tables (`columns()` lists a model's columns under an alias,
  `read()` turns them back into an instance with the same conversions the
  ORM applies, so PostgreSQL and SQLite give the same Python values);
- `WriteBatch` sends a transaction's writes in one round trip: on
  PostgreSQL one statement of data-modifying CTEs

      WITH w0 AS (INSERT ... RETURNING id), w1 AS (INSERT ... VALUES ((SELECT id FROM w0), ...)),
           w2 AS (UPDATE ... RETURNING 1)
      SELECT (SELECT id FROM w0), (SELECT id FROM w1), (SELECT count(*) FROM w2)

  and elsewhere (SQLite) one statement after another, the same statements.
  An insert may refer to a row inserted earlier in the batch (a foreign key
  to an unsaved instance): PostgreSQL reads its id from that CTE, SQLite
  from the statement that ran before.

Both run in the caller's transaction. The writes of one batch see the same
snapshot and not each other's effects (apart from the ids they refer to),
and a row is changed by at most one of them. Model.save(), its signals and
save() overrides are bypassed: use it for append-only rows and counters
that are plain inserts and updates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Field, Model

# --- reading ---------------------------------------------------------------------


class RowReader:
    """How to read a model's concrete columns under a table alias in a
    hand-written SELECT, and to build instances from them."""

    def __init__(self, model: type[Model], alias: str, using: str = DEFAULT_DB_ALIAS) -> None:
        connection = connections[using]
        self.model = model
        self.using = using
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        quote = connection.ops.quote_name
        self.columns = ", ".join(f"{alias}.{quote(f.column)}" for f in self.fields)
        self.table = quote(model._meta.db_table)
        self.width = len(self.fields)
        self.pk_index = self.attnames.index(model._meta.pk.attname)
        # What the ORM's compiler applies to each value it reads: the
        # backend's converters (SQLite's text dates, decimals, UUIDs, ...)
        # and the field's own (from_db_value).
        self.converters: list[tuple[int, list[Callable], Any]] = []
        for i, f in enumerate(self.fields):
            col = f.get_col(alias)
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if found:
                self.converters.append((i, found, col))

    def read(self, row: Sequence[Any], offset: int = 0) -> Model | None:
        """The instance in row[offset:offset + width], or None when its
        primary key is NULL (the unmatched side of a LEFT JOIN)."""
        values = list(row[offset : offset + self.width])
        if values[self.pk_index] is None:
            return None
        connection = connections[self.using]
        for i, converters, col in self.converters:
            value = values[i]
            for converter in converters:
                value = converter(value, col, connection)
            values[i] = value
        return self.model.from_db(self.using, self.attnames, values)


@lru_cache(maxsize=256)
def row_reader(model: type[Model], alias: str, vendor: str) -> RowReader:
    """The RowReader of `model` under `alias` (`vendor`: the default
    database's, so a test that switches databases gets its own)."""
    return RowReader(model, alias)


def reader(model: type[Model], alias: str) -> RowReader:
    return row_reader(model, alias, connections[DEFAULT_DB_ALIAS].vendor)


def fetch_one(sql: str, params: Sequence[Any]) -> tuple | None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def db_value(model: type[Model], field_name: str, value: Any) -> Any:
    """A lookup value as `model.field_name` stores it in this database."""
    connection = connections[DEFAULT_DB_ALIAS]
    return model._meta.get_field(field_name).get_db_prep_value(value, connection)


# --- writing ---------------------------------------------------------------------


@lru_cache(maxsize=256)
def _insert_plan(model: type[Model], vendor: str) -> tuple[str, list[Field], str]:
    """(INSERT INTO t (columns) , the fields it writes, the primary key's
    column): every concrete field but an automatic primary key."""
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field and not f.generated]
    columns = ", ".join(quote(f.column) for f in fields)
    return f"INSERT INTO {quote(meta.db_table)} ({columns})", fields, quote(meta.pk.column)


@dataclass
class _Write:
    kind: str  # "insert" | "raw" (an UPDATE or INSERT written as SQL)
    obj: Model | None = None
    sql: str = ""
    params: list[Any] = field(default_factory=list)
    expect: int | None = None
    if_none: Callable[[], None] | None = None
    on_mismatch: Callable[[int], None] | None = None
    key: Any = None


class WriteBatch:
    def __init__(self) -> None:
        self._writes: list[_Write] = []
        self._after: list[Callable[[], None]] = []
        self._executed = False
        # Writers that keep state across several writes of one batch (the
        # audit chain's head, say) keep it here.
        self.memo: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._writes)

    def insert(self, obj: Model) -> None:
        """INSERTs `obj` as a new row; execute() sets its primary key. A
        foreign key of `obj` may name an instance inserted earlier in this
        batch."""
        self._check_open()
        self._writes.append(_Write("insert", obj=obj))

    def update(self, obj: Model, fields: Sequence[str]) -> None:
        """UPDATEs the row of `obj` (saved) with its current `fields`."""
        connection = connections[DEFAULT_DB_ALIAS]
        meta = obj._meta
        quote = connection.ops.quote_name
        sets, params = [], []
        for name in fields:
            f = meta.get_field(name)
            sets.append(f"{quote(f.column)} = %s")  # type: ignore[union-attr]
            params.append(f.get_db_prep_save(getattr(obj, f.attname), connection))  # type: ignore[union-attr]
        params.append(obj.pk)
        self.raw(
            f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} "  # noqa: S608 (our names)
            f"WHERE {quote(meta.pk.column)} = %s",
            params,
        )

    def raw(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        expect: int | None = None,
        on_mismatch: Callable[[int], None] | None = None,
        if_none: Callable[[], None] | None = None,
        key: Any = None,
    ) -> None:
        """An UPDATE (or INSERT) written as SQL with %s placeholders, without
        a RETURNING clause. `expect`: the rows it must change, else
        `on_mismatch(rows changed)` runs after the batch (and should raise);
        `if_none`: runs after the batch when it changed no row (to create a
        missing row, say). A later write with the same `key` replaces this
        one (one row, one change per statement)."""
        self._check_open()
        write = _Write(
            "raw",
            sql=sql,
            params=list(params),
            expect=expect,
            on_mismatch=on_mismatch,
            if_none=if_none,
            key=key,
        )
        if key is not None:
            for i, earlier in enumerate(self._writes):
                if earlier.key == key:
                    self._writes[i] = write
                    return
        self._writes.append(write)

    def after(self, action: Callable[[], None]) -> None:
        """Runs `action` once the batch has executed (in the transaction):
        for work that must see the batch's rows, or that writes audit
        records itself (their chain head must not be read before the
        batch's own records are written)."""
        self._check_open()
        self._after.append(action)

    def execute(self) -> None:
        self._check_open()
        self._executed = True
        connection = connections[DEFAULT_DB_ALIAS]
        with transaction.atomic(savepoint=False):
            if connection.vendor == "postgresql" and len(self._writes) > 1:
                results = self._execute_together(connection)
            else:
                results = [self._execute_alone(connection, w) for w in self._writes]
            for write, result in zip(self._writes, results, strict=True):
                if write.kind == "insert":
                    assert write.obj is not None
                    write.obj.pk = result
                    write.obj._state.adding = False
                    write.obj._state.db = DEFAULT_DB_ALIAS
                elif write.expect is not None and result != write.expect:
                    assert write.on_mismatch is not None
                    write.on_mismatch(result)
                elif not result and write.if_none is not None:
                    write.if_none()
            for action in self._after:
                action()

    # --- internals -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._executed:
            raise RuntimeError("this WriteBatch was already executed")

    def _insert_parts(
        self, connection: Any, obj: Model, ref: Callable[[Model], str | None]
    ) -> tuple[str, list[str], list[Any]]:
        """(INSERT INTO ..., the VALUES placeholders, their params) of `obj`.
        A foreign key to an unsaved instance of the batch becomes `ref(it)`."""
        head, fields, _pk = _insert_plan(type(obj), connection.vendor)
        placeholders, params = [], []
        for f in fields:
            if f.is_relation and getattr(obj, f.attname) is None:
                target = getattr(obj, f.name)  # the instance assigned, unsaved
                reference = ref(target) if target is not None else None
                if reference is not None:
                    placeholders.append(reference)
                    continue
            placeholders.append("%s")
            params.append(f.get_db_prep_save(f.pre_save(obj, add=True), connection))
        return head, placeholders, params

    def _execute_alone(self, connection: Any, write: _Write) -> Any:
        with connection.cursor() as cursor:
            if write.kind == "raw":
                cursor.execute(write.sql, write.params)
                return cursor.rowcount
            obj = write.obj
            assert obj is not None
            for f in obj._meta.concrete_fields:
                # Earlier inserts of the batch have their ids by now.
                if f.is_relation and getattr(obj, f.attname) is None:
                    target = getattr(obj, f.name)
                    if target is not None:
                        setattr(obj, f.attname, target.pk)
            head, placeholders, params = self._insert_parts(connection, obj, lambda _t: None)
            _head, _fields, pk = _insert_plan(type(obj), connection.vendor)
            cursor.execute(f"{head} VALUES ({', '.join(placeholders)}) RETURNING {pk}", params)
            # Set now: a later insert of the batch may name this row.
            obj.pk = cursor.fetchone()[0]
            return obj.pk

    def _execute_together(self, connection: Any) -> list[Any]:
        names = {id(w.obj): f"w{i}" for i, w in enumerate(self._writes) if w.kind == "insert"}
        ctes, selects, params = [], [], []

        def ref(target: Model) -> str | None:
            name = names.get(id(target))
            if name is None:
                return None
            _head, _fields, pk = _insert_plan(type(target), connection.vendor)
            return f"(SELECT {pk} FROM {name})"  # noqa: S608 (names we made)

        for i, write in enumerate(self._writes):
            name = f"w{i}"
            if write.kind == "insert":
                assert write.obj is not None
                head, placeholders, write_params = self._insert_parts(connection, write.obj, ref)
                _head, _fields, pk = _insert_plan(type(write.obj), connection.vendor)
                ctes.append(f"{name} AS ({head} VALUES ({', '.join(placeholders)}) RETURNING {pk})")
                selects.append(f"(SELECT {pk} FROM {name})")  # noqa: S608
                params.extend(write_params)
            else:
                ctes.append(f"{name} AS ({write.sql} RETURNING 1)")
                selects.append(f"(SELECT count(*) FROM {name})")  # noqa: S608
                params.extend(write.params)
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT {', '.join(selects)}", params)
            return list(cursor.fetchone())
