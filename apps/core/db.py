"""Several independent writes in one database round trip.

A payment writes a handful of rows that do not depend on one another (its
transition, its audit record and chain head, its stored answer, its risk
decision and the risk totals). Sent one by one, each costs a round trip
while the payment's transaction holds its locks; `WriteBatch` compiles them
with Django's own compilers and, on PostgreSQL, sends them as one statement
of data-modifying CTEs:

    WITH w0 AS (INSERT ... RETURNING id), w1 AS (UPDATE ... RETURNING 1)
    SELECT (SELECT id FROM w0), (SELECT count(*) FROM w1)

Elsewhere (SQLite) they run one after another. Either way they run in the
caller's transaction, in one go, when `execute()` is called; an error
(a unique violation, say) fails the whole statement as it would fail the
write alone.

The writes must be independent: the statements of one CTE see the same
snapshot and not each other's effects, and a row may be changed by only one
of them (so `update(..., key=...)` replaces an earlier update of the same
row instead of adding a second). Model.save(), its signals and save()
overrides are bypassed: use it for append-only rows and counters that are
plain inserts and updates, not for models whose save() does work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.models import Model, QuerySet
from django.db.models.sql import InsertQuery, UpdateQuery


@dataclass
class _Write:
    kind: str  # "insert" | "update" | "raw" (an UPDATE/INSERT given as SQL)
    obj: Model | None = None
    queryset: QuerySet | None = None
    values: dict[str, Any] = field(default_factory=dict)
    sql: str = ""
    params: list[Any] = field(default_factory=list)
    if_none: Callable[[], None] | None = None
    key: Any = None


class WriteBatch:
    def __init__(self, using: str = "default") -> None:
        self.using = using
        self._writes: list[_Write] = []
        self._after: list[Callable[[], None]] = []
        self._executed = False
        # Writers that keep state across several writes of one batch (the
        # audit chain's head, say) keep it here.
        self.memo: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._writes)

    def insert(self, obj: Model) -> None:
        """INSERTs `obj` as a new row; its primary key is set by execute()."""
        self._check_open()
        self._writes.append(_Write("insert", obj=obj))

    def update(
        self,
        queryset: QuerySet,
        values: dict[str, Any],
        *,
        if_none: Callable[[], None] | None = None,
        key: Any = None,
    ) -> None:
        """queryset.update(**values). `if_none` runs after execute() when no
        row matched (to create a missing row, say). A later update with the
        same `key` replaces this one (one row, one change per statement)."""
        self._check_open()
        write = _Write("update", queryset=queryset, values=values, if_none=if_none, key=key)
        if key is not None:
            for i, earlier in enumerate(self._writes):
                if earlier.key == key:
                    self._writes[i] = write
                    return
        self._writes.append(write)

    def raw(
        self, sql: str, params: list[Any], *, if_none: Callable[[], None] | None = None
    ) -> None:
        """An UPDATE (or INSERT) written as SQL with %s placeholders, for a
        hot-path write whose ORM form costs more to compile than to run.
        Without a RETURNING clause; `if_none` as for update()."""
        self._check_open()
        self._writes.append(_Write("raw", sql=sql, params=list(params), if_none=if_none))

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
        connection = connections[self.using]
        # Inside the caller's transaction; alone it is one atomic statement.
        with transaction.atomic(using=self.using, savepoint=False):
            if not self._writes:
                results = []
            elif connection.vendor == "postgresql" and len(self._writes) > 1:
                results = self._execute_together(connection)
            else:
                results = [self._execute_alone(w) for w in self._writes]
            for write, result in zip(self._writes, results, strict=True):
                if write.kind == "insert":
                    write.obj.pk = result
                    write.obj._state.adding = False
                    write.obj._state.db = self.using
                elif not result and write.if_none is not None:
                    write.if_none()
            for action in self._after:
                action()

    # --- internals -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._executed:
            raise RuntimeError("this WriteBatch was already executed")

    @staticmethod
    def _insert_fields(obj: Model) -> list[Any]:
        # The fields Model.save() would insert.
        meta = obj._meta
        return [
            f
            for f in meta.local_concrete_fields
            if not f.generated and (obj.pk is not None or f is not meta.auto_field)
        ]

    def _compiled(self, write: _Write) -> tuple[str, list[Any]]:
        if write.kind == "raw":
            return write.sql, write.params
        if write.kind == "insert":
            query = InsertQuery(type(write.obj))
            query.insert_values(self._insert_fields(write.obj), [write.obj])
            [(sql, params)] = query.get_compiler(using=self.using).as_sql()
            return sql, list(params)
        query = write.queryset.query.chain(UpdateQuery)
        query.add_update_values(write.values)
        compiler = query.get_compiler(using=self.using)
        compiler.pre_sql_setup()
        sql, params = compiler.as_sql()
        return sql, list(params)

    def _execute_alone(self, write: _Write) -> Any:
        if write.kind == "raw":
            with connections[self.using].cursor() as cursor:
                cursor.execute(write.sql, write.params)
                return cursor.rowcount
        if write.kind == "update":
            return write.queryset.update(**write.values)
        obj = write.obj
        [row] = type(obj)._base_manager._insert(
            [obj],
            fields=self._insert_fields(obj),
            returning_fields=[obj._meta.pk],
            using=self.using,
        )
        return row[0]

    def _execute_together(self, connection: Any) -> list[Any]:
        ctes, selects, params = [], [], []
        for i, write in enumerate(self._writes):
            sql, write_params = self._compiled(write)
            name = f"w{i}"
            if write.kind == "insert":
                pk = connection.ops.quote_name(write.obj._meta.pk.column)
                ctes.append(f"{name} AS ({sql} RETURNING {pk})")
                selects.append(f"(SELECT {pk} FROM {name})")  # noqa: S608 (names we made)
            else:
                ctes.append(f"{name} AS ({sql} RETURNING 1)")
                selects.append(f"(SELECT count(*) FROM {name})")  # noqa: S608
            params.extend(write_params)
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT {', '.join(selects)}", params)
            return list(cursor.fetchone())


def first_row(model: type[Model], where: str, params: list[Any]) -> Model | None:
    """`model.objects.filter(...).first()` for a hot path: one row by an
    indexed lookup, without compiling a query (the ORM's compile costs a
    payment more CPU than the database's answer). `where` is SQL over the
    model's own columns with %s placeholders; pass values as the database
    wants them (db_value for UUIDs and the like)."""
    table = connections[model.objects.db].ops.quote_name(model._meta.db_table)
    rows = list(model.objects.raw(f"SELECT * FROM {table} WHERE {where} LIMIT 1", params))  # noqa: S608
    return rows[0] if rows else None


def db_value(model: type[Model], field_name: str, value: Any) -> Any:
    """A lookup value as `model.field_name` stores it in this database."""
    connection = connections[model.objects.db]
    return model._meta.get_field(field_name).get_db_prep_value(value, connection)
