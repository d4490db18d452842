"""Database expressions shared by the models (generated columns) and the figures."""

from __future__ import annotations

from typing import Any

from django.db.models import F, FloatField, Func


class SecondsBetween(Func):
    """Seconds from `start` to `end`, in the database's own arithmetic (Django's generic duration
    on SQLite calls back into Python for every row). Immutable on both databases, so it can define
    a stored generated column."""

    output_field = FloatField()

    def __init__(self, start: str, end: str) -> None:
        super().__init__(F(end), F(start))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - ", **extra
        )
