"""Presence rows on PostgreSQL in an UNLOGGED table: written without the write-ahead log, so an
open or closed socket does not wait for a disk flush (8 ms of a connect's 15 on a database thread
in a reconnect storm). What that gives up is exactly what presence does not need: after a database
crash the table comes back empty, as every socket is then gone anyway, and a standby does not
receive it (after a failover, presence fills again as sockets reconnect and ping)."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _set(logged: bool) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            table = schema_editor.quote_name("realtime_connection")
            schema_editor.execute(f"ALTER TABLE {table} SET {'LOGGED' if logged else 'UNLOGGED'}")

    return run


class Migration(migrations.Migration):
    dependencies = [("realtime", "0001_initial")]

    operations = [migrations.RunPython(_set(logged=False), _set(logged=True), elidable=False)]
