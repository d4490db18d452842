"""A claim on PostgreSQL in one statement: the professional's row locked and their load counted,
the head of their line taken, written with its timeline and its room line, in one round trip.

Under contention a claim is bounded by the work each claimer does: through the ORM it takes seven
statements, each compiled in Python and planned by the server (thirteen before the claim was one
transition); the bare queue statement takes one. The rules are those of the portable path in
`cases.py` (the tests run both): the line is `-priority, submitted_at, pk` over the waiting cases
of the professional's kind and skills they never declined (read through `case_claim_idx`); the
case is assigned and accepted at once, stamped, its first response kept if it had one; the
timeline gets both steps, the room one line.

The SQL is built once from the models: every column of the rows it inserts is written as Django
would write it (defaults included), and every column it reads goes through the fields' converters,
so a field added to these models later is handled without touching this module.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

from consult.models import LOAD_STATUSES, Case, CaseEvent, Message, MessageKind, Professional, Status, User, Verb

_Fields = tuple[Field, ...]
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


@functools.cache
def _columns(model: type[Model]) -> _Fields:
    return tuple(model._meta.concrete_fields)


@functools.cache
def _converters(fields: _Fields) -> tuple[tuple[int, Field, tuple[Any, ...]], ...]:
    """The fields among `fields` whose values need converting when read (JSON, ...)."""
    found = []
    for index, field in enumerate(fields):
        if converters := tuple(field.get_db_converters(connection)):  # type: ignore[attr-defined]
            found.append((index, field, converters))
    return tuple(found)


def _load(db: BaseDatabaseWrapper, model: type[Model], fields: _Fields, values: Sequence[Any]) -> Any:
    """A model instance from a row read by hand, through the fields' converters."""
    row = list(values)
    for index, field, converters in _converters(fields):
        for converter in converters:
            row[index] = converter(row[index], field, db)
    return model.from_db(db.alias, [f.attname for f in fields], row)


def _literal(status: str) -> str:
    if not status.isidentifier():
        raise ValueError(status)
    return f"'{status}'"


@functools.cache
def _insert(model: type[Model], supplied: tuple[tuple[str, str], ...]) -> tuple[str, str, _Fields]:
    """Columns and SELECT expressions that insert a `model` row from inside the statement:
    `supplied` gives the SQL of the columns the statement computes (by attname); every other
    column is a parameter cast to its column's type. Returns the fields that give the parameters."""
    computed = dict(supplied)
    columns, expressions, parameters = [], [], []
    for field in _columns(model):
        if field.primary_key or getattr(field, "generated", False):
            continue
        columns.append(_quote(field.column))
        if field.attname in computed:
            expressions.append(computed[field.attname])
        else:
            expressions.append(f"CAST(%s AS {field.db_type(connection)})")
            parameters.append(field)
    return ", ".join(columns), ", ".join(expressions), tuple(parameters)


def _values(db: BaseDatabaseWrapper, instance: Model, fields: _Fields) -> list[Any]:
    return [field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]


_EVENT = (("case_id", "claimed.id"),)
_LINE = (("case_id", "claimed.id"), ("seq", "claimed.last_seq"))


@functools.cache
def _claim_sql() -> tuple[str, tuple[str, ...]]:
    """The statement, with positional placeholders, and the name of the value each one takes."""
    cases = _quote(Case._meta.db_table)
    professionals = _quote(Professional._meta.db_table)
    professional = ", ".join(f"p.{_quote(f.column)}" for f in _columns(Professional))
    me = ", ".join(f"me.{_quote(f.column)}" for f in _columns(Professional))
    returning = ", ".join(f"c.{_quote(f.column)}" for f in _columns(Case))
    selected = ", ".join(f"claimed.{_quote(f.column)}" for f in _columns(Case))
    event_columns, event_values, _ = _insert(CaseEvent, _EVENT)
    line_columns, line_values, _ = _insert(Message, _LINE)
    # Statuses are constants of the code, written into the statement rather than passed, so that
    # even a prepared (generic) plan matches the partial index `case_claim_idx` on `waiting`.
    waiting, active = _literal(Status.WAITING), _literal(Status.ACTIVE)
    load = ", ".join(_literal(status) for status in LOAD_STATUSES)
    # `me`: the professional's row, locked, as it is now. A statement reads as of its start, so if
    # it waited for that lock (another tab's claim), what it counts would miss what the holder did:
    # `fresh` compares the row version it locked with the one it reads, and a claim that is not
    # fresh takes nothing (the caller runs it again). Every service that gives a professional a
    # case writes their row (last_assigned_at), so the version changes whenever the load grows.
    # `picked`: the line in index order, stopped at the first case nobody holds (SKIP LOCKED), so
    # its cost does not grow with the line; a case another claimer took and committed meanwhile
    # is re-checked against `status` once locked, and passed over.
    sql = f"""
        WITH me AS (
            SELECT {professional}, p.xmin::text AS version, u.{_quote("name")} AS user_name
            FROM {professionals} p JOIN {_quote(User._meta.db_table)} u ON u.id = p.user_id
            WHERE p.id = %(me)s
            FOR UPDATE OF p
        ),
        state AS (
            SELECT me.version = (SELECT s.xmin::text FROM {professionals} s WHERE s.id = me.id) AS fresh,
                   (SELECT count(*) FROM {cases} l WHERE l.assignee_id = me.id AND l.status IN ({load})) AS load
            FROM me
        ),
        picked AS (
            SELECT c.id FROM {cases} c
            WHERE (SELECT state.fresh AND me.on_duty AND state.load < me.capacity FROM me, state)
              AND c.status = {waiting} AND c.kind = (SELECT me.kind FROM me)
              AND c.skill_id IN (
                  SELECT s.skill_id FROM {_quote(Professional.skills.through._meta.db_table)} s
                  WHERE s.professional_id = %(me)s
              )
              AND NOT EXISTS (
                  SELECT 1 FROM {_quote(Case.declined_by.through._meta.db_table)} d
                  WHERE d.case_id = c.id AND d.professional_id = %(me)s
              )
            ORDER BY c.priority DESC, c.submitted_at, c.id
            LIMIT 1
            FOR UPDATE OF c SKIP LOCKED
        ),
        claimed AS (
            UPDATE {cases} c
            SET status = {active}, assignee_id = %(me)s, assigned_at = %(now)s, accepted_at = %(now)s,
                first_response_at = coalesce(c.first_response_at, %(now)s), last_seq = c.last_seq + 1
            FROM picked
            WHERE c.id = picked.id AND c.status = {waiting} AND c.assignee_id IS NULL
            RETURNING {returning}
        ),
        timeline AS (
            INSERT INTO {_quote(CaseEvent._meta.db_table)} ({event_columns})
            SELECT {event_values.replace("%s", "%(claimed_event)s")} FROM claimed
            UNION ALL
            SELECT {event_values.replace("%s", "%(accepted_event)s")} FROM claimed
        ),
        room AS (
            INSERT INTO {_quote(Message._meta.db_table)} ({line_columns})
            SELECT {line_values.replace("%s", "%(line)s")} FROM claimed
            RETURNING id
        ),
        touched AS (
            UPDATE {professionals} SET last_assigned_at = %(now)s
            WHERE id = %(me)s AND EXISTS (SELECT 1 FROM claimed)
        )
        SELECT state.fresh, state.load, {me}, me.user_name, {selected}, (SELECT id FROM room)
        FROM me CROSS JOIN state LEFT JOIN claimed ON true
    """  # noqa: S608 (names come from the models; every value is a parameter)
    return _PLACEHOLDER.sub("%s", sql), tuple(_PLACEHOLDER.findall(sql))


# Planning the statement costs the server more than running it (1.6 ms against 0.8 here), and a
# claim runs the same statement every time: prepared once per connection, it is planned for its
# first executions, then PostgreSQL keeps a generic plan (which still reads `case_claim_idx`).
# A prepared statement lives in the server session: worth it where a connection outlives a
# request (DB_CONN_MAX_AGE not 0), and wrong behind a pooler that shares server sessions between
# clients transaction by transaction, which settings.py runs with DB_CONN_MAX_AGE=0. Django's own
# switch for prepared statements, the `prepare_threshold` option, turns it on as well.
_PREPARED = "consult_claim_next"
_prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()


def _may_prepare(db: BaseDatabaseWrapper) -> bool:
    persistent = db.settings_dict.get("CONN_MAX_AGE", 0) != 0
    return persistent or db.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None


@functools.cache
def _numbered(sql: str) -> str:
    """`sql` with PostgreSQL's numbered parameters ($1, $2, ...) for PREPARE."""
    numbers = iter(range(1, sql.count("%s") + 1))
    return re.sub("%s", lambda _match: f"${next(numbers)}", sql)


@dataclass
class Claim:
    """What one claim statement found. `case` and `line` are None when it took nothing; then
    `fresh` False means run it again, else `me` was off duty, at capacity (`load`) or their line
    had nothing left to take."""

    me: Professional
    fresh: bool
    load: int
    case: Case | None
    line: Message | None


def claim_next(*, professional: Professional, now: datetime, room_verb: str) -> Claim:
    """Claim the next case for `professional` in one statement (its own transaction, or part of
    the caller's): lock the professional, count their load, take the head of their line and write
    it, its timeline, its room line and their last assignment. Professional.DoesNotExist if the
    professional is gone."""
    db = connections[DEFAULT_DB_ALIAS]
    actor = professional.user_id
    steps = [CaseEvent(verb=verb, actor_id=actor, detail={}, created_at=now) for verb in (Verb.CLAIMED, Verb.ACCEPTED)]
    line = Message(kind=MessageKind.SYSTEM, sender_id=actor, detail={"verb": room_verb}, created_at=now)
    event_fields = _insert(CaseEvent, _EVENT)[2]
    line_fields = _insert(Message, _LINE)[2]
    sql, names = _claim_sql()
    named: dict[str, Any] = {"me": professional.pk, "now": now}
    # The inserted rows' values, in the order their placeholders appear.
    rows = {
        "claimed_event": iter(_values(db, steps[0], event_fields)),
        "accepted_event": iter(_values(db, steps[1], event_fields)),
        "line": iter(_values(db, line, line_fields)),
    }
    params = [next(rows[name]) if name in rows else named[name] for name in names]
    with db.cursor() as cursor:
        if _may_prepare(db):
            db.ensure_connection()
            if db.connection not in _prepared_on:
                cursor.execute(f"PREPARE {_PREPARED} AS {_numbered(sql)}")
                _prepared_on.add(db.connection)
            cursor.execute(f"EXECUTE {_PREPARED}({', '.join(['%s'] * len(params))})", params)
        else:
            cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise Professional.DoesNotExist()
    professional_fields, case_fields = _columns(Professional), _columns(Case)
    at = 2 + len(professional_fields)
    me: Professional = _load(db, Professional, professional_fields, row[2:at])
    me.user = _load(db, User, _user_name(), (me.user_id, row[at]))  # the rest of the user loads on use
    values = row[at + 1 : at + 1 + len(case_fields)]
    if values[0] is None:
        return Claim(me=me, fresh=bool(row[0]), load=int(row[1]), case=None, line=None)
    case: Case = _load(db, Case, case_fields, values)
    case.assignee = me
    me.last_assigned_at = now
    line.pk = row[-1]
    line.case = case
    line.seq = case.last_seq
    line.sender = me.user
    return Claim(me=me, fresh=bool(row[0]), load=int(row[1]), case=case, line=line)


@functools.cache
def _user_name() -> _Fields:
    return (User._meta.pk, User._meta.get_field("name"))
