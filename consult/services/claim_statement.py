"""A claim on PostgreSQL in one statement: the professional's row locked and their load counted,
the head of their line taken, written with its timeline, its room line and the figures' tally of
first responses, in one round trip.

Under contention a claim is bounded by the work each claimer does: through the ORM it takes seven
statements, each compiled in Python and planned by the server (thirteen before the claim was one
transition); the bare queue statement takes one. The rules are those of the portable path in
`cases.py` (the tests run both): the line is `-priority, submitted_at, pk` over the waiting cases
of the professional's kind and skills they never declined (read through `case_claim_idx`); the
case is assigned and accepted at once, stamped, its first response kept if it had one; the
timeline gets both steps, the room one line.

The SQL is built once from the models: every column of the rows it inserts is written as Django
would write it (defaults included), and every column it reads goes through the fields' converters,
so a field added to these models later is handled without touching this module. What a claim
passes is only what differs between claims (the professional, the time): the inserted rows' other
columns are the same every time (their verbs, details, defaults) and are written into the
statement once, as literals, instead of being converted and quoted again on every claim.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from psycopg import sql as pgsql

from consult.models import (
    LOAD_STATUSES,
    Case,
    CaseEvent,
    CaseTally,
    Message,
    MessageKind,
    Professional,
    Status,
    User,
    Verb,
)

_Fields = tuple[Field, ...]
_PLACEHOLDER = re.compile(r"(?<!%)%\((\w+)\)s")


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


def _varies(field: Field) -> bool:
    """Whether a column nobody sets may differ from one row to the next (a callable default, a
    value stamped on save): then it cannot be written into the statement once."""
    return (field.has_default() and callable(field.default)) or bool(
        getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    )


def _literal_value(db: BaseDatabaseWrapper, value: Any) -> str:
    # Quoted as psycopg quotes a parameter client-side (Django's default cursor), with `%` doubled
    # since the statement goes through parameter interpolation.
    db.ensure_connection()
    return pgsql.Literal(value).as_string(db.connection).replace("%", "%%")


def _insert(
    db: BaseDatabaseWrapper, template: Model, supplied: dict[str, str], given: frozenset[str]
) -> tuple[str, str, _Fields]:
    """Columns and SELECT expressions that insert a row like `template` from inside the statement:
    `supplied` gives the SQL of the columns the statement computes (by attname; a bare
    placeholder is cast to its column's type); the columns set in `given` and those whose
    default is the same for every row are written as literals, from `template`; any other
    column (a per-row default) is a parameter. Returns the fields that give the parameters."""
    columns, expressions, parameters = [], [], []
    for field in _columns(type(template)):
        if field.primary_key or getattr(field, "generated", False):
            continue
        columns.append(_quote(field.column))
        cast = f"AS {field.db_type(connection)})"
        if field.attname in supplied:
            computed = supplied[field.attname]
            expressions.append(f"CAST({computed} {cast}" if _PLACEHOLDER.fullmatch(computed) else computed)
        elif field.attname in given or not _varies(field):
            expressions.append(f"CAST({_literal_value(db, _values(db, template, (field,))[0])} {cast}")
        else:
            expressions.append(f"CAST(%s {cast}")
            parameters.append(field)
    return ", ".join(columns), ", ".join(expressions), tuple(parameters)


def _values(db: BaseDatabaseWrapper, instance: Model, fields: _Fields) -> list[Any]:
    return [field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]


# The inserted rows: their case and place from the statement, their author (the professional's
# user) and time from the claim.
_BY_ME = "(SELECT me.user_id FROM me)"
_EVENT = {"case_id": "claimed.id", "actor_id": _BY_ME, "created_at": "%(now)s"}
_LINE = {"case_id": "claimed.id", "seq": "claimed.last_seq", "sender_id": _BY_ME, "created_at": "%(now)s"}


@dataclass(frozen=True)
class _Row:
    """One row the statement inserts: how it is built, and what a claim passes for it."""

    model: type[Model]
    values: dict[str, Any]  # set by this module, the same for every claim

    def template(self) -> Model:
        return self.model(**self.values)


def _rows(room_verb: str) -> dict[str, _Row]:
    return {
        "claimed_event": _Row(CaseEvent, {"verb": Verb.CLAIMED, "detail": {}}),
        "accepted_event": _Row(CaseEvent, {"verb": Verb.ACCEPTED, "detail": {}}),
        "line": _Row(Message, {"kind": MessageKind.SYSTEM, "detail": {"verb": room_verb}}),
    }


@dataclass(frozen=True)
class _Statement:
    sql: str  # positional placeholders
    names: tuple[str, ...]  # the value each placeholder takes
    rows: dict[str, tuple[_Row, _Fields]]  # the inserted rows' per-row parameters, by name
    prepared: str  # numbered placeholders ($1, ...), one per distinct claim value
    prepared_names: tuple[str, ...]


@functools.cache
def _claim_sql(room_verb: str) -> _Statement:
    """The statement for claims whose room line says `room_verb`."""
    if not room_verb.isidentifier():  # it names the prepared statement
        raise ValueError(room_verb)
    db = connections[DEFAULT_DB_ALIAS]
    rows = _rows(room_verb)
    inserts = {
        name: _insert(db, row.template(), _EVENT if row.model is CaseEvent else _LINE, frozenset(row.values))
        for name, row in rows.items()
    }
    claimed_event, accepted_event, line = (
        (columns, expressions.replace("%s", f"%({name})s")) for name, (columns, expressions, _) in inserts.items()
    )
    cases = _quote(Case._meta.db_table)
    professionals = _quote(Professional._meta.db_table)
    professional = ", ".join(f"p.{_quote(f.column)}" for f in _columns(Professional))
    me = ", ".join(f"me.{_quote(f.column)}" for f in _columns(Professional))
    returning = ", ".join(f"c.{_quote(f.column)}" for f in _columns(Case))
    selected = ", ".join(f"claimed.{_quote(f.column)}" for f in _columns(Case))
    # Statuses are constants of the code, written into the statement rather than passed, so that
    # even a prepared (generic) plan matches the partial index `case_claim_idx` on `waiting`.
    waiting, active = _literal(Status.WAITING), _literal(Status.ACTIVE)
    load = ", ".join(_literal(status) for status in LOAD_STATUSES)
    # `me`: the professional's row, locked, as it is now. A statement reads as of its start, so if
    # it waited for that lock (another tab's claim), what it counts would miss what the holder did:
    # `fresh` compares the row version it locked with the one it reads, and a claim that is not
    # fresh takes nothing (the caller runs it again). Every service that gives a professional a
    # case writes their row (last_assigned_at), so the version changes whenever the load grows.
    # `tallied`: a first response stamped now, counted in the figures' tally (consult/tally.py; the
    # bucket is the local day of submission in the site's time zone).
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
            INSERT INTO {_quote(CaseEvent._meta.db_table)} ({claimed_event[0]})
            SELECT {claimed_event[1]} FROM claimed
            UNION ALL
            SELECT {accepted_event[1]} FROM claimed
        ),
        room AS (
            INSERT INTO {_quote(Message._meta.db_table)} ({line[0]})
            SELECT {line[1]} FROM claimed
            RETURNING id
        ),
        touched AS (
            UPDATE {professionals} SET last_assigned_at = %(now)s
            WHERE id = %(me)s AND EXISTS (SELECT 1 FROM claimed)
        ),
        tallied AS (
            UPDATE {_quote(CaseTally._meta.db_table)} t SET responded = t.responded + 1
            FROM claimed
            WHERE claimed.first_response_at = %(now)s AND t.skill_id = claimed.skill_id
              AND t.kind = claimed.kind AND t.day = (claimed.submitted_at AT TIME ZONE %(zone)s)::date
        )
        SELECT state.fresh, state.load, {me}, me.user_name, {selected}, (SELECT id FROM room)
        FROM me CROSS JOIN state LEFT JOIN claimed ON true
    """  # noqa: S608 (names come from the models; values are parameters or quoted by psycopg)
    names = tuple(_PLACEHOLDER.findall(sql))
    # Prepared, each claim value is passed once however often the statement uses it.
    distinct = tuple(dict.fromkeys(name for name in names if name not in rows))
    numbers = {name: n for n, name in enumerate(distinct, 1)}
    extra = iter(range(len(distinct) + 1, len(names) + 2))
    prepared = _PLACEHOLDER.sub(lambda m: f"${numbers.get(m[1]) or next(extra)}", sql).replace("%%", "%")
    prepared_names = distinct + tuple(name for name in names if name in rows)
    per_row = {name: (rows[name], inserts[name][2]) for name in rows}
    return _Statement(_PLACEHOLDER.sub("%s", sql), names, per_row, prepared, prepared_names)


# Planning the statement costs the server more than running it (1.6 ms against 0.8 here), and a
# claim runs the same statement every time: prepared once per connection, it is planned for its
# first executions, then PostgreSQL keeps a generic plan (which still reads `case_claim_idx`).
# A prepared statement lives in the server session: worth it where a connection outlives a
# request (DB_CONN_MAX_AGE not 0), and wrong behind a pooler that shares server sessions between
# clients transaction by transaction, which settings.py runs with DB_CONN_MAX_AGE=0. Django's own
# switch for prepared statements, the `prepare_threshold` option, turns it on as well.
_PREPARED = "consult_claim_next"
_prepared_on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _may_prepare(db: BaseDatabaseWrapper) -> bool:
    # A pooled connection (DB_POOL_SIZE) keeps its server session from one checkout to the next.
    persistent = db.settings_dict.get("CONN_MAX_AGE", 0) != 0 or bool(db.settings_dict.get("OPTIONS", {}).get("pool"))
    return persistent or db.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None


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
    statement = _claim_sql(room_verb)
    named: dict[str, Any] = {"me": professional.pk, "now": now, "zone": settings.TIME_ZONE}
    # Columns with a per-row default (none today): their values, in the order their placeholders appear.
    rows = {name: iter(_values(db, row.template(), fields)) for name, (row, fields) in statement.rows.items() if fields}
    with db.cursor() as cursor:
        if _may_prepare(db):
            db.ensure_connection()
            name = f"{_PREPARED}_{room_verb}"
            prepared = _prepared_on.setdefault(db.connection, set())
            if name not in prepared:
                cursor.execute(f"PREPARE {name} AS {statement.prepared}")
                prepared.add(name)
            params = [next(rows[n]) if n in rows else named[n] for n in statement.prepared_names]
            cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params)
        else:
            cursor.execute(statement.sql, [next(rows[n]) if n in rows else named[n] for n in statement.names])
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
    line = Message(
        pk=row[-1], case=case, seq=case.last_seq, sender=me.user, created_at=now, **_rows(room_verb)["line"].values
    )
    return Claim(me=me, fresh=bool(row[0]), load=int(row[1]), case=case, line=line)


@functools.cache
def _user_name() -> _Fields:
    return (User._meta.pk, User._meta.get_field("name"))
