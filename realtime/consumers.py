"""Websocket consumers: the case room (chat, typing, receipts, presence, live status and place in
line) and the queue feed (professionals' queues and coordinators' dashboards).

A consumer is a thin edge: it checks access with `case_get_for_user`, parses a frame, calls one
service through `db` (realtime/db.py), and relays group events. A bad frame gets an error
event on that socket only; nothing a client sends can crash the consumer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _

from consult import selectors
from consult.errors import CaseError
from consult.logs import connection_id, request_id
from consult.metrics import OPEN_SOCKETS
from consult.models import MESSAGE_MAX_LENGTH, Case, Document, Kind, Message, Professional, Status, User
from consult.outage import outage_of
from consult.services import messages as chat
from consult.templatetags.consult_tags import duration_text, system_text
from realtime import limits, presence, shutdown
from realtime.auth import logout_reaches, user_of
from realtime.db import db
from realtime.events import DASHBOARD_GROUP, case_group, queue_group, run_in_background, user_group
from realtime.limits import socket_limits
from realtime.lines import line_after
from staff.sockets import verified_user

logger = logging.getLogger(__name__)

TYPING_EVERY_SECONDS = 2.0
# What a client should wait before sending again after a passing fault (database, layer).
RETRY_AFTER_SECONDS = 2.0
# Messages replayed by one `hello` (one trip to the database); a client further behind says hello
# again from where the page ended (`more`). What catch-ups send back is bounded per person
# (CHAT_REPLAYED_PER_MINUTE, realtime/limits.py).
REPLAY_PAGE = 100
# How long a closing socket may take to finish the frames it already received.
FINISH_SECONDS = 5.0
# A body at the limit must fit however a client encodes it: JSON encoders that escape non-ASCII
# write a Chinese character as \uXXXX (6 characters) and an emoji as a surrogate pair (12).
MAX_FRAME_CHARS = 12 * MESSAGE_MAX_LENGTH + 1_000
# A `synced` names who is online from what this socket last heard (its own presence write, then
# the room's announcements) when that is this recent: in a reconnect storm every hello otherwise
# read it again, right after the presence batch had. Older, or after the layer lost events, it is
# read with the page. (What no announcement says: a dead process's rows expiring from the window.)
ONLINE_HEARD_SECONDS = 10.0
# Close codes (4000-4999 are the application's own).
CLOSE_ACCESS_LOST = 4403
CLOSE_LOGGED_OUT = 4401


class AwayChecks:
    """Which (case, sender) pairs had an away check queued by this process within the last
    settings.OFFLINE_NOTICE_DELAY_SECONDS: their next messages need none (the queued check runs
    after the burst and sees who is away then). Read in the event loop, so a message in a burst
    costs no thread hop and no broker trip."""

    def __init__(self) -> None:
        self.until: dict[tuple[int, int], float] = {}

    def first(self, case_id: int, sender_id: int) -> bool:
        """True if a check should be queued for this message (and remembers it)."""
        window = settings.OFFLINE_NOTICE_DELAY_SECONDS
        if window <= 0:
            return True
        now, key = time.monotonic(), (case_id, sender_id)
        if self.until.get(key, 0.0) > now:
            return False
        if len(self.until) >= 10_000:  # keep the memory bounded: forget the windows that ended
            self.until = {k: t for k, t in self.until.items() if t > now}
        self.until[key] = now + window
        return True


away_checks = AwayChecks()


class Consumer(AsyncJsonWebsocketConsumer):
    # The label of consult_open_sockets (consult/metrics.py).
    kind = "socket"
    counted = False

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        # Every log line of this connection, and the jobs it queues, carry its id: the handlers
        # run in this connection's task, and the tasks it starts copy its context.
        request_id.set(connection_id(self.scope.get("headers", [])))
        if shutdown.draining:
            await self.close(code=shutdown.SERVICE_RESTART)  # this process is stopping
            return
        shutdown.live.add(self)
        await super().websocket_connect(message)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        if not self.counted:
            self.counted = True
            OPEN_SOCKETS.labels(self.kind).inc()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        try:
            await super().websocket_disconnect(message)
        finally:
            shutdown.live.discard(self)
            if self.counted:
                self.counted = False
                OPEN_SOCKETS.labels(self.kind).dec()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """As channels does, without its hop to the one sync thread to close old database
        connections before every event: this consumer's database work runs through `db`, whose
        threads do that around each call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def events_batch(self, event: dict[str, Any]) -> None:
        """Several events of one change, sent to the group as one (realtime/events.py)."""
        for one in event["events"]:
            await self.dispatch(one)


class CaseRoomConsumer(Consumer):
    kind = "case_room"
    case: Case
    user: User
    online: presence.Online | None = None  # who is online, as this socket last heard
    online_heard = 0.0

    async def connect(self) -> None:
        reference = self.scope["url_route"]["kwargs"]["reference"]

        def open_connection() -> tuple[User, Case]:
            # One trip to the database for the user and the access check.
            user = verified_user(self.scope, user_of(self.scope))
            return user, selectors.case_get_for_user(user=user, reference=reference, room=True)

        try:
            user, self.case = await db(open_connection)()
        except Http404:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.user = user
        self.actor = f"user:{user.pk}"  # what the limits count by (consult/limits.py's form)
        self.language = user.language
        self.last_typing = 0.0
        self.read_sent = 0
        self.groups_joined = [case_group(self.case.pk), queue_group(self.case.skill_id), user_group(user.pk)]
        # Frames are worked on in order by one task of this socket, so that while a message is
        # being stored the socket still receives what the room broadcasts.
        self.frames: asyncio.Queue[tuple[Callable[[dict[str, Any]], Coroutine[Any, Any, None]], dict[str, Any]]]
        self.frames = asyncio.Queue()
        self.worker = asyncio.ensure_future(self.work())
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        # Accepted once access is known: the presence row is written after, so that in a storm a
        # handshake waits for one trip to the database threads, not also for a presence batch
        # queued behind the other sockets' access checks.
        await self.accept()
        # Who is online reaches this socket with the room's announcement (it is in the room now),
        # and again with the `synced` that answers its hello.
        self.heard_online(
            await presence.opened(case_id=self.case.pk, user_id=user.pk, channel_name=self.channel_name)
        )
        await self.send_place()

    def heard_online(self, online: presence.Online | None) -> None:
        self.online, self.online_heard = online, time.monotonic()

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "groups_joined"):
            return
        try:
            # Frames already received are finished (a message being stored is stored), briefly.
            await asyncio.wait_for(self.frames.join(), timeout=FINISH_SECONDS)
        except TimeoutError:
            logger.warning("a closing socket left %d frames unworked", self.frames.qsize())
        self.worker.cancel()
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        try:
            await presence.closed(case_id=self.case.pk, channel_name=self.channel_name)
        except Exception:
            logger.exception("could not record the end of a connection")

    # --- frames from the client -----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error("bad_frame", _("Send text frames with JSON."))
            return
        if len(text_data) > MAX_FRAME_CHARS:
            too_long = _("The message is too long: at most %(n)d characters.") % {"n": MESSAGE_MAX_LENGTH}
            await self.send_error("too_long", too_long)
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("bad_json", _("The frame is not valid JSON."))
            return
        if not isinstance(content, dict):
            await self.send_error("bad_frame", _("The frame must be a JSON object."))
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        handler = {
            "hello": self.on_hello,
            "message": self.on_message,
            "typing": self.on_typing,
            "read": self.on_read,
            "ping": self.on_ping,
        }.get(str(content.get("type")))
        frame_type = str(content.get("type"))
        client_id = content.get("client_id") if frame_type == "message" else None
        if handler is None:
            await self.send_error("unknown_type", _("Unknown frame type."))
            return
        counts = [("frames", limits.frames(), 1)]
        if frame_type == "message":
            counts.append(("messages", limits.messages(), 1))
        elif frame_type == "hello":
            counts.append(("replayed", limits.replayed(), 0))  # counted once the page is sent
        # Per person, across their sockets (and processes, on Redis): more tabs do not buy more.
        wait = await socket_limits.take(self.actor, counts)
        with translation.override(self.language):
            if wait:
                await self.send_error(
                    "rate_limited", _("You are sending messages too fast. Please wait a moment."),
                    answers=frame_type, client_id=client_id, retry_after=wait,
                )
                return
        self.frames.put_nowait((handler, content))

    async def work(self) -> None:
        """Work on this socket's frames one after the other, in the order they came."""
        while True:
            handler, content = await self.frames.get()
            try:
                await self.work_on(handler, content)
            finally:
                self.frames.task_done()

    async def work_on(
        self, handler: Callable[[dict[str, Any]], Coroutine[Any, Any, None]], content: dict[str, Any]
    ) -> None:
        frame_type = str(content.get("type"))
        client_id = content.get("client_id") if frame_type == "message" else None
        with translation.override(self.language):
            try:
                await handler(content)
            except CaseError as error:
                await self.send_error(
                    error.code or "refused", " ".join(error.messages), answers=frame_type, client_id=client_id
                )
            except Exception as error:
                if outage_of(error) is not None:
                    logger.warning("case room frame failed for a passing fault: %r", error)
                    code, text = "unavailable", _("The service is busy for a moment. Your message will be sent again.")
                else:
                    logger.exception("case room frame failed")
                    code, text = "server_error", _("Something went wrong. Please try again.")
                await self.send_error(
                    code, text, answers=frame_type, client_id=client_id, retry_after=RETRY_AFTER_SECONDS
                )

    async def on_hello(self, content: dict[str, Any]) -> None:
        """(Re)connect: replay a page of what follows the last sequence number the client holds;
        `more` says there is more (the client says hello again from where the page ended)."""
        last_seq = content.get("last_seq", 0)
        if not isinstance(last_seq, int) or isinstance(last_seq, bool) or last_seq < 0:
            await self.send_error("bad_field", _("last_seq must be a whole number."), answers="hello")
            return
        heard = self.online if time.monotonic() - self.online_heard < ONLINE_HEARD_SECONDS else None
        batch, online = await db(self.replay, catch_up=True)(last_seq, heard is None)
        if online is None and len(batch) < REPLAY_PAGE:
            online = heard
        for message in batch:
            await self.send_json({"type": "message", "message": self.render(chat.message_payload(message))})
        if batch:
            await socket_limits.take(self.actor, [("replayed", limits.replayed(), len(batch))])
        synced: dict[str, Any] = {"type": "synced", "last_seq": batch[-1].seq if batch else last_seq}
        if online is None:
            synced["more"] = True
        else:
            synced["online"] = online
        await self.send_json(synced)

    def replay(self, after: int, online: bool) -> tuple[list[Message], list[dict[str, Any]] | None]:
        """A page of the messages after `after`, and, with the last page, who is online if asked
        (`online`): one trip to the database for a client coming back (after a restart, every
        client at once)."""
        batch = chat.messages_after(case=self.case, seq=after, limit=REPLAY_PAGE)
        return batch, (chat.online_users(self.case) if online and len(batch) < REPLAY_PAGE else None)

    async def on_message(self, content: dict[str, Any]) -> None:
        client_id, body, document_id = content.get("client_id"), content.get("body", ""), content.get("document_id")
        if not isinstance(client_id, str) or not client_id:
            await self.send_error("missing_field", _("A message needs a client_id."), answers="message")
            return
        if not isinstance(body, str) or (document_id is not None and not isinstance(document_id, int)):
            await self.send_error(
                "bad_field", _("The message fields have the wrong type."), answers="message", client_id=client_id
            )
            return
        message, created = await db(self.post)(client_id, body, document_id)
        await self.send_json({"type": "ack", "client_id": client_id, "seq": message.seq})
        # After the acknowledgement, and not awaited: a broker that is slow to take the job never
        # holds up the chat (the notice itself is sent by a worker).
        if created and chat.offline_candidates(message) and away_checks.first(self.case.pk, self.user.pk):
            run_in_background(db(chat.offline_notice_enqueue)(message=message), "offline notice")

    def post(self, client_id: str, body: str, document_id: int | None) -> tuple[Message, bool]:
        document = None
        if document_id is not None:
            document = Document.objects.filter(case=self.case, pk=document_id).first()
            if document is None:
                raise CaseError(_("That document is not on this case."), code="document")
        return chat.message_post(case=self.case, sender=self.user, body=body, client_id=client_id, document=document)

    async def on_typing(self, content: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last_typing < TYPING_EVERY_SECONDS:
            return
        self.last_typing = now
        await self.channel_layer.group_send(
            case_group(self.case.pk),
            {"type": "case.typing", "user_id": self.user.pk, "name": self.user.name, "from": self.channel_name},
        )

    async def on_read(self, content: dict[str, Any]) -> None:
        seq = content.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            await self.send_error("bad_field", _("seq must be a whole number."), answers="read")
            return
        if seq <= self.read_sent:
            return  # nothing new read: no write, no broadcast
        self.read_sent = await db(chat.read_mark)(case=self.case, user=self.user, seq=seq)

    async def on_ping(self, content: dict[str, Any]) -> None:
        """Keeps the presence row fresh, and says how far the chat goes: a client that holds less
        missed a broadcast and resyncs (a bound on how long a quiet client can stay behind)."""
        last_seq = await db(chat.connection_touch)(
            case=self.case, user=self.user, channel_name=self.channel_name
        )
        await self.send_json({"type": "pong", "last_seq": last_seq})

    async def send_error(
        self, code: str, message: str, *, answers: str = "", client_id: Any = None, retry_after: float = 0.0
    ) -> None:
        """An error frame: which frame it answers (`answers`, and `client_id` for a message), and
        whether sending that frame again can help (`retry`, after `retry_after` seconds)."""
        frame: dict[str, Any] = {"type": "error", "code": code, "message": str(message), "retry": retry_after > 0}
        if answers:
            frame["answers"] = answers
        if isinstance(client_id, str):
            frame["client_id"] = client_id
        if retry_after > 0:
            frame["retry_after"] = math.ceil(retry_after * 10) / 10
        await self.send_json(frame)

    def render(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload["kind"] == "system":
            with translation.override(self.language):
                return {**payload, "text": system_text(payload)}
        return payload

    # --- events from the groups -----------------------------------------------------------

    async def case_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", "message": self.render(event["message"])})

    async def case_read(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "read", "user_id": event["user_id"], "seq": event["seq"]})

    async def case_presence(self, event: dict[str, Any]) -> None:
        self.heard_online(event["online"])
        await self.send_json({"type": "presence", "online": event["online"]})

    async def case_typing(self, event: dict[str, Any]) -> None:
        if event["from"] != self.channel_name and event["user_id"] != self.user.pk:
            await self.send_json({"type": "typing", "user_id": event["user_id"], "name": event["name"]})

    async def case_status(self, event: dict[str, Any]) -> None:
        """A status change: the assignee may have changed, so the access is checked again."""
        try:
            self.case = await db(selectors.case_get_for_user)(
                user=self.user, reference=self.case.reference, room=True
            )
        except Http404:
            await self.send_json({"type": "closed", "reason": "access"})
            await self.close(code=CLOSE_ACCESS_LOST)
            return
        with translation.override(self.language):
            await self.send_json(
                {"type": "status", "status": event["status"], "label": str(Status(event["status"]).label)}
            )
        await self.send_place()

    async def queue_changed(self, event: dict[str, Any]) -> None:
        change = event.get("change")
        if not isinstance(change, str) or self.case.status != Status.WAITING:
            await self.send_place()
            return
        line = await line_after(skill_id=self.case.skill_id, change=change)
        await self.send_place_frame(line.place_of(self.case.pk), line.wait_of(self.case.pk))

    async def layer_resync(self, event: dict[str, Any]) -> None:
        """The channel layer lost events while reconnecting: the client fetches what it missed."""
        self.heard_online(None)  # announcements may have been lost too: its hello reads who is online
        await self.send_json({"type": "resync"})

    async def user_logout(self, event: dict[str, Any]) -> None:
        if not logout_reaches(event, self.scope):
            return
        await self.send_json({"type": "closed", "reason": "logout"})
        await self.close(code=CLOSE_LOGGED_OUT)

    async def send_place(self) -> None:
        """The resident's live place in line and estimated wait, while the case waits."""
        if self.case.status != Status.WAITING:
            return
        await self.send_place_frame(*await db(self.place)())

    async def send_place_frame(self, place: int | None, wait: timedelta | None) -> None:
        if place is None:
            return
        with translation.override(self.language):
            await self.send_json(
                {
                    "type": "place",
                    "place": place,
                    "wait": duration_text(wait),
                    "wait_seconds": int(wait.total_seconds()) if wait else None,
                }
            )

    def place(self) -> tuple[int | None, timedelta | None]:
        case = Case.objects.select_related("skill").get(pk=self.case.pk)
        return selectors.queue_place(case), selectors.estimated_wait(case)


class QueueFeedConsumer(Consumer):
    """Tells a professional's queue page, or a coordinator's dashboard, to refresh when it changes."""

    kind = "queue_feed"

    async def connect(self) -> None:
        user, groups = await db(self.groups_for)()
        if groups is None:
            await self.close()
            return
        self.groups_joined = [*groups, user_group(user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    def groups_for(self) -> tuple[Any, list[str] | None]:
        """The socket's user and the groups it follows (None: not staff, refused)."""
        user = verified_user(self.scope, user_of(self.scope))
        if not user.is_authenticated or not user.is_active:
            return user, None
        if user.is_coordinator:
            return user, [DASHBOARD_GROUP]
        professional = Professional.objects.filter(user=user).first()
        if professional is None:
            return user, None
        skills = professional.skills.filter(kind=Kind(professional.kind)).values_list("pk", flat=True)
        return user, [queue_group(pk) for pk in skills]

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Nothing to say here but "ping" (as any JSON encoder writes it); anything else gets a polite error.
        try:
            content = json.loads(text_data) if text_data and len(text_data) <= 100 else None
        except ValueError:
            content = None
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
            return
        await self.send_json({"type": "error", "code": "unknown_type", "message": _("Unknown frame type.")})

    async def queue_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "refresh", "skill_id": event["skill_id"]})

    async def layer_resync(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "refresh", "skill_id": None})

    async def user_logout(self, event: dict[str, Any]) -> None:
        if logout_reaches(event, self.scope):
            await self.close(code=CLOSE_LOGGED_OUT)
