"""Notices to people (SMS, e-mail) through an outbox: see notices/services.py."""

from __future__ import annotations

from typing import Any

# What the locmem SMS backend sent, as django.core.mail.outbox for e-mail (tests empty it).
outbox: list[Any] = []
