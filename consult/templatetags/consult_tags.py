from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from django import template
from django.db.models import Choices
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext

from consult.models import Message, Priority, Status, Verb

register = template.Library()


@register.filter
def duration_text(value: timedelta | None) -> str:
    """A wait as people say it: "3 days", "2 hours", "5 minutes"."""
    if value is None:
        return ""
    minutes = max(int(value.total_seconds() // 60), 1)
    if minutes >= 60 * 24:
        days = minutes // (60 * 24)
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    if minutes >= 60:
        hours = minutes // 60
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


@register.filter
def clock(milliseconds: int | None) -> str:
    """A recording's length as a player shows it: "0:03", "4:59"."""
    if milliseconds is None:
        return ""
    seconds = max(round(milliseconds / 1000), 1)
    return f"{seconds // 60}:{seconds % 60:02d}"


@lru_cache(maxsize=256)
def _label(choices: type[Choices], value: Any, language: str) -> str:
    try:
        member = choices(value)
    except ValueError:
        return str(value)
    with translation.override(language):
        return str(member.label)


@register.filter
def status_label(value: str) -> str:
    """A case's status in the reader's language. Lists show hundreds of cases, and Django's
    get_status_display rebuilds the choices and translates again for every row."""
    return _label(Status, value, translation.get_language() or "")


@register.filter
def priority_label(value: int) -> str:
    return _label(Priority, value, translation.get_language() or "")


@register.filter
def since(value: datetime | None) -> timedelta | None:
    return timezone.now() - value if value else None


def system_text(payload: dict[str, Any]) -> str:
    """A status line in the reader's language: "王芳 accepted the case"."""
    detail = payload.get("detail") or {}
    verb = detail.get("verb", "")
    label = str(Verb(verb).label) if verb in Verb.values else verb
    extra = detail.get("document") or detail.get("professional") or ""
    text = f"{payload['sender']} {label}" if payload.get("sender") else label
    return f"{text}: {extra}" if extra else text


@register.filter
def message_text(message: Message) -> str:
    return system_text({"detail": message.detail, "sender": message.sender.name if message.sender else ""})


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds() / 3600
    return float(value)


@register.simple_tag
def bar_chart(rows: list[dict[str, Any]], key: str, title: str, label: str = "month") -> str:
    """A small bar chart drawn on the server (no script, readable on a phone)."""
    values = [_number(row.get(key)) for row in rows]
    top = max(values) if values and max(values) > 0 else 1.0
    width, height, gap = 320, 140, 4
    bar = (width - gap * (len(values) + 1)) / max(len(values), 1)
    parts = []
    for i, (row, value) in enumerate(zip(rows, values, strict=True)):
        h = round((value / top) * (height - 30), 1)
        x = round(gap + i * (bar + gap), 1)
        tick: Any = row.get(label)
        tick_text = tick.strftime("%m") if isinstance(tick, (date, datetime)) else str(tick)
        shown = f"{value:.1f}" if isinstance(row.get(key), timedelta) else f"{value:g}"
        parts.append(
            format_html(
                '<g><title>{}: {}</title><rect x="{}" y="{}" width="{}" height="{}" rx="2"></rect>'
                '<text x="{}" y="{}" text-anchor="middle" class="tick">{}</text></g>',
                tick_text, shown, x, height - 16 - h, round(bar, 1), h, round(x + bar / 2, 1), height - 3, tick_text,
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        width, height, title, mark_safe("".join(parts)),  # noqa: S308 - each part built by format_html
    )


@register.filter
def hours(value: timedelta | None) -> str:
    return "—" if value is None else f"{value.total_seconds() / 3600:.1f}"


@register.simple_tag(takes_context=True)
def submit_once(context: template.Context) -> str:
    """The hidden key of a form that creates something: sent twice, it is done once
    (consult/once.py); static/js/once.js disables the form's buttons once it is sent."""
    from consult.once import FIELD, key_for_form, new_key

    request = context.get("request")
    key = key_for_form(request) if request is not None else new_key()
    return format_html('<input type="hidden" name="{}" value="{}">', FIELD, key)
