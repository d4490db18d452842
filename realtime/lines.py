"""Places in line, worked out once per queue change in each process.

Every waiting resident's socket is in its queue's group and shows its place live. A change to the
queue (a claim, a new case) reaches all of them at once; were each to count the cases ahead of its
own, one change would cost a process statements in proportion to the people waiting. Instead the
first socket to hear a change reads the whole line (one read of the queue index, selectors.queue_line)
and the others of the same process wait for that read and take their place from it.

A change is told apart by the name its event carries (realtime/events.py `queue_changed`): a read
started after the event arrived sees the change, one started before might not, so sockets never
share a line across changes. The line is not put in the event itself: with thousands waiting, each
refresh would carry tens of kilobytes to every process.
"""

from __future__ import annotations

import asyncio
import collections
import weakref

from consult import selectors
from realtime.db import db

# Lines kept per queue: sockets still working on an older change (a slow one) find it; a newer one
# pushes the oldest out.
KEEP = 4

_Lines = dict[int, collections.OrderedDict[str, "asyncio.Future[selectors.Line]"]]
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lines] = weakref.WeakKeyDictionary()


async def line_after(*, skill_id: int, change: str) -> selectors.Line:
    """The line of `skill_id` as it is after the change named `change`."""
    lines = _by_loop.setdefault(asyncio.get_running_loop(), {}).setdefault(skill_id, collections.OrderedDict())
    line = lines.get(change)
    if line is None:
        line = lines[change] = asyncio.ensure_future(db(selectors.queue_line)(skill_id=skill_id))
        while len(lines) > KEEP:
            lines.popitem(last=False)
    # One socket closing while it waits must not cancel the read the others wait for.
    return await asyncio.shield(line)
