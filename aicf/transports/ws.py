"""WebSocket /ws: events of SPEC §12 topics, each with a gapless global sequence number, resumable.

Protocol (docs/API.md has examples):
  client -> {"op": "subscribe", "topics": [...], "from_seq": N}   from_seq optional, inclusive
  server -> {"type": "subscribed", "topics": [...], "from_seq": N, "latest_seq": M}
  server -> {"type": "event", "seq": S, "topic": T, "data": {...}}  ascending seq, topics filtered
  server -> {"type": "lagged", "resume_from": R, "message": ...} then close 1013: the client fell too far behind
  server -> {"type": "error", "code": C, "message": ...} then close 1008 (bad subscribe) or 1011 (server trouble)
Without from_seq a client gets only events appended after it subscribed. Sequence numbers start at 1.

How the server never loses an event:
- The service appends events to the `EventSource` in the transaction that made the change, numbered 1, 2, 3...
- One `EventHub` per app reads the source forward from its `position` (polling every poll_interval_s, or at
  once when `notify()` is called after a commit). It only ever advances over a contiguous run of numbers,
  so an event whose transaction commits late is waited for, never skipped.
- A new subscriber first catches up by reading the source itself, up to the hub's position, sending as it
  reads (the socket's pace is the backpressure); then, with no await between the check and the move, it
  joins the hub, which hands it every later event with a number above its cursor.
- A live subscriber has a bounded queue. If the hub finds it full, the subscriber is told `lagged`, with the
  first number it has not been sent, and disconnected; resuming from that number misses nothing.

Who may connect, and what a connection may cost (docs/SECURITY.md, "Transport and secrets"):
- A browser page may open /ws only from this server's own origin or one in `allowed_origins`: a request with
  another `Origin` header is refused with HTTP 403 before the handshake. Clients that send no Origin (every
  non-browser client) are served.
- At most `max_connections` at once; one more is accepted and closed at once with 1013 and a reason.
- Every send yields to the event loop, so a connection whose peer vanished is seen as closed before the next
  write: its catch-up stops instead of writing thousands of events into a dead socket (each such write used to
  log a line). A client that reads slower than we write waits on the server's flow control (uvicorn pauses the
  send while its write buffer is over its high-water mark); one that reads nothing for `send_timeout_s` is
  dropped. The live queue holds at most `queue_max` events (then `lagged`), the catch-up at most one `page`.
"""

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from aicf.core.errors import AicfError
from aicf.transports.errors import INTERNAL_ERROR, InvalidParamsError, JsonValue, error_object
from aicf.transports.rpc import dumps, parse_body, to_wire
from aicf.transports.schemas import TOPICS, WsSubscribe, validate_params

log = logging.getLogger("aicf.transports.ws")

CLOSE_BAD_REQUEST: Final = 1008
CLOSE_SERVER_ERROR: Final = 1011
CLOSE_LAGGED: Final = 1013  # "try again later"
CLOSE_FULL: Final = 1013  # too many connections: try again later
_DEFAULT_PORTS: Final[Mapping[str, int]] = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class EventRecord(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def data(self) -> Mapping[str, object]: ...


class EventSource(Protocol):
    def read_since(self, seq: int, topics: Collection[str] | None, limit: int) -> Sequence[EventRecord]:
        """Up to `limit` events with a number above `seq`, ascending, of `topics` (None: every topic)."""
        ...

    def latest_seq(self) -> int:
        """The highest number appended so far (0 before the first event)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    seq: int
    topic: str
    data: Mapping[str, object]


class MemoryEventSource:
    """An EventSource in a list, for tests and single-process runs. Thread-safe."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def append(self, topic: str, data: Mapping[str, object]) -> Event:
        return self.append_many([(topic, data)])[0]

    def append_many(self, items: Iterable[tuple[str, Mapping[str, object]]]) -> list[Event]:
        """Append several events at once: a reader sees all of them or none."""
        with self._lock:
            added = []
            for topic, data in items:
                if topic not in TOPICS:
                    raise ValueError(f"unknown topic {topic!r}; topics are {', '.join(TOPICS)}")
                event = Event(seq=len(self._events) + 1, topic=topic, data=data)
                self._events.append(event)
                added.append(event)
            return added

    def read_since(self, seq: int, topics: Collection[str] | None, limit: int) -> list[Event]:
        with self._lock:
            out: list[Event] = []
            for event in self._events[max(seq, 0) :]:
                if topics is None or event.topic in topics:
                    out.append(event)
                    if len(out) >= limit:
                        break
            return out

    def latest_seq(self) -> int:
        with self._lock:
            return len(self._events)


@dataclass(frozen=True, slots=True, kw_only=True)
class WsLimits:
    queue_max: int = 1000  # events waiting for one live subscriber before it is told `lagged`
    page: int = 500  # events per source read
    poll_interval_s: float = 0.05
    subscribe_timeout_s: float = 30.0
    send_timeout_s: float = 10.0  # a client that takes no data for this long is dropped
    max_connections: int = 256  # open /ws connections; one more is closed at once with CLOSE_FULL
    allowed_origins: frozenset[str] = frozenset()  # browser origins besides our own, e.g. "https://ops.example"

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    """(host, port) of `host[:port]`, the scheme's default port filled in; None if it is not one."""
    try:
        parts = urlsplit(f"//{netloc}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number or out of range
        return None
    if not host or parts.username is not None or parts.password is not None or scheme not in _DEFAULT_PORTS:
        return None
    return host, port if port is not None else _DEFAULT_PORTS[scheme]


def origin_allowed(origin: str | None, host: str | None, scheme: str, allowed: Collection[str]) -> bool:
    """May a WebSocket request with this `Origin` header, sent to `host` (the Host header) over `scheme` (ws or
    wss), be served? Yes without an Origin (not a browser), for an origin in `allowed` (compared without case or
    a trailing slash), or for the server's own host and port; no for anything else, `null` included."""
    if origin is None:
        return True
    wanted = origin.strip().rstrip("/").lower()
    if wanted in {a.strip().rstrip("/").lower() for a in allowed}:
        return True
    parts = urlsplit(wanted)
    if parts.scheme not in ("http", "https") or host is None or parts.path or parts.query:
        return False
    theirs = _host_port(parts.netloc, parts.scheme)
    return theirs is not None and theirs == _host_port(host.strip().lower(), scheme)


@dataclass(eq=False)
class _Subscriber:
    topics: frozenset[str]
    cursor: int  # every matching event up to here has been sent or queued
    delivered: int  # the last number sent (or cursor at subscribe time)
    pending: deque[tuple[int, str]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    live: bool = False  # the hub queues its events; before that it catches up from the source
    evicted: dict[str, object] | None = None  # the last message before the server closes


def _encode(event: EventRecord) -> str:
    try:
        data = to_wire(event.data)
    except TypeError:
        log.exception("ws: event %d (%s) has data that cannot go on the wire", event.seq, event.topic)
        data = {"error": "the server could not render this event's data"}
    return dumps({"type": "event", "seq": event.seq, "topic": event.topic, "data": data}).decode("utf-8")


class EventHub:
    """Reads the source forward once for every subscriber and fans the events out (see the module docstring)."""

    def __init__(self, source: EventSource, limits: WsLimits) -> None:
        self.source = source
        self.limits = limits
        self.position = -1  # set from the source when the hub starts
        self._live: set[_Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._start_lock: asyncio.Lock | None = None
        self._gap_logged = 0

    async def ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        if self._start_lock is None or self._loop is not loop:
            self._loop, self._start_lock = loop, asyncio.Lock()
        async with self._start_lock:
            if self._task is not None and not self._task.done():
                return
            if self.position < 0:
                self.position = await run_in_threadpool(self.source.latest_seq)
            self._live.clear()
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(self._wake), name="aicf-event-hub")
            self._task.add_done_callback(self._on_done)

    def notify(self) -> None:
        """New events were committed: read them now rather than at the next poll. Callable from any thread."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def join(self, sub: _Subscriber) -> bool:
        """Move a caught-up subscriber to live delivery; False if the hub moved on meanwhile (catch up again)."""
        if sub.cursor < self.position:
            return False
        sub.live = True
        self._live.add(sub)
        return True

    def leave(self, sub: _Subscriber) -> None:
        self._live.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._live)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ws: the event hub stopped", exc_info=task.exception())

    async def _run(self, wake: asyncio.Event) -> None:
        try:
            while True:
                await self._advance()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.limits.poll_interval_s)
                wake.clear()
        finally:  # a dead hub must not leave subscribers waiting forever: send them away to resume
            for sub in list(self._live):
                self._evict(sub, {"type": "error", "code": INTERNAL_ERROR, "message": "event stream restarting"})

    async def _advance(self) -> None:
        while True:
            try:
                batch = await run_in_threadpool(self.source.read_since, self.position, None, self.limits.page)
            except AicfError as exc:
                log.warning("ws: reading events failed, retrying at the next poll: %s", exc)
                return
            run = 0
            for event in batch:
                if event.seq != self.position + 1 + run:
                    self._note_gap(self.position + 1 + run, event.seq)
                    break
                self._fan_out(event)
                run += 1
            self.position += run
            if run < self.limits.page:
                return

    def _note_gap(self, want: int, got: int) -> None:
        if self._gap_logged != want:
            self._gap_logged = want
            log.warning("ws: event %d is not visible yet (next visible is %d); waiting for it", want, got)

    def _fan_out(self, event: EventRecord) -> None:
        text: str | None = None
        for sub in list(self._live):
            if event.topic not in sub.topics or event.seq <= sub.cursor:
                continue
            if len(sub.pending) >= self.limits.queue_max:
                message = f"more than {self.limits.queue_max} events were waiting for this connection"
                self._evict(sub, {"type": "lagged", "message": message})
                continue
            text = text if text is not None else _encode(event)
            sub.pending.append((event.seq, text))
            sub.cursor = event.seq
            sub.wake.set()

    def _evict(self, sub: _Subscriber, message: dict[str, object]) -> None:
        self._live.discard(sub)
        sub.evicted = message
        sub.wake.set()


class WsServer:
    def __init__(self, source: EventSource, limits: WsLimits | None = None) -> None:
        self.limits = limits or WsLimits()
        self.source = source
        self.hub = EventHub(source, self.limits)
        self.connections = 0  # open /ws connections (changed on the event loop only)
        self._changed = threading.Condition()

    def wait_connections(self, *, at_most: int, timeout_s: float) -> bool:
        """Block (in another thread than the server's loop) until at most `at_most` connections are open; False
        if that did not happen within `timeout_s`. For shutdown and tests."""
        with self._changed:
            return self._changed.wait_for(lambda: self.connections <= at_most, timeout_s)

    def _count(self, delta: int) -> None:
        with self._changed:
            self.connections += delta
            self._changed.notify_all()

    async def endpoint(self, websocket: WebSocket) -> None:
        origin = websocket.headers.get("origin")
        if not origin_allowed(origin, websocket.headers.get("host"), websocket.url.scheme, self.limits.allowed_origins):
            with contextlib.suppress(WebSocketDisconnect):  # a client already gone needs no answer (nor a log line)
                await self._deny(websocket, origin or "")
            return
        if self.connections >= self.limits.max_connections:
            reason = f"server full: {self.limits.max_connections} connections; try again later"
            with contextlib.suppress(WebSocketDisconnect):
                await websocket.accept()
                await websocket.close(CLOSE_FULL, reason)
            return
        self._count(+1)
        try:
            await self._connection(websocket)
        finally:
            self._count(-1)

    async def _deny(self, websocket: WebSocket, origin: str) -> None:
        shown = ", ".join(sorted(self.limits.allowed_origins)) or "this server's own origin"
        message = f"origin {origin[:100]!r} may not open /ws (allowed: {shown})"
        log.info("ws: refused a connection from origin %r", origin[:100])
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(JSONResponse({"error": message}, status_code=403))
        else:  # a server without the denial extension answers 403 to a close before accept
            await websocket.close(CLOSE_BAD_REQUEST, message[:120])

    async def _connection(self, websocket: WebSocket) -> None:
        await websocket.accept()
        sub = await self._subscribe(websocket)
        if sub is None:
            return
        watcher = asyncio.create_task(self._watch(websocket))
        sender = asyncio.create_task(self._serve(websocket, sub))
        try:
            await asyncio.wait({watcher, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.hub.leave(sub)
            for task in (watcher, sender):
                task.cancel()
            for task in (watcher, sender):
                with contextlib.suppress(
                    asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError, TimeoutError
                ):
                    await task

    async def _subscribe(self, websocket: WebSocket) -> _Subscriber | None:
        try:
            message = await asyncio.wait_for(websocket.receive(), self.limits.subscribe_timeout_s)
        except TimeoutError:
            await self._refuse(websocket, InvalidParamsError([("op", "send a subscribe message first")]))
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is None:
            await self._refuse(websocket, InvalidParamsError([("message", "send JSON text, not binary")]))
            return None
        try:
            request = validate_params(WsSubscribe, parse_body(text.encode("utf-8")))
        except AicfError as exc:
            await self._refuse(websocket, exc)
            return None
        await self.hub.ensure_started()
        cursor = request.from_seq - 1 if request.from_seq is not None else self.hub.position
        topics = frozenset(request.topics)
        sub = _Subscriber(topics=topics, cursor=cursor, delivered=cursor)
        self.hub.join(sub)  # live before the ack when there is nothing to catch up: no event can slip past
        sent = False
        try:
            await websocket.send_text(
                dumps(
                    {
                        "type": "subscribed",
                        "topics": list[JsonValue](sorted(topics)),
                        "from_seq": cursor + 1,
                        "latest_seq": self.hub.position,
                    }
                ).decode("utf-8")
            )
            sent = True
        finally:
            if not sent:
                self.hub.leave(sub)
        return sub

    async def _refuse(self, websocket: WebSocket, exc: AicfError) -> None:
        await websocket.send_text(dumps({"type": "error", **error_object(exc)}).decode("utf-8"))
        await websocket.close(CLOSE_BAD_REQUEST)

    async def _watch(self, websocket: WebSocket) -> None:
        """Returns when the client goes away; a client has nothing more to say after subscribing."""
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def _send(self, websocket: WebSocket, text: str) -> None:
        async with asyncio.timeout(self.limits.send_timeout_s):  # no task per send, unlike wait_for
            await websocket.send_text(text)
        # A send does not wait while the socket's buffer has room, so without this a catch-up page would be written
        # in one go: a peer that vanished meanwhile would get the rest of it written into its dead socket, one
        # asyncio warning per write. Yielding lets the loop notice the lost connection; the next send then raises.
        await asyncio.sleep(0)

    async def _serve(self, websocket: WebSocket, sub: _Subscriber) -> None:
        # 1. catch up from the source, up to the hub's position
        while not sub.live and not self.hub.join(sub):
            upto = self.hub.position
            batch = await run_in_threadpool(self.source.read_since, sub.cursor, sub.topics, self.limits.page)
            complete = len(batch) < self.limits.page
            for event in batch:
                if event.seq > upto:
                    complete = True
                    break
                await self._send(websocket, _encode(event))
                sub.delivered = sub.cursor = event.seq
            if complete:
                sub.cursor = max(sub.cursor, upto)
        # 2. live: what the hub queues for us
        while True:
            await sub.wake.wait()
            sub.wake.clear()
            while sub.pending and sub.evicted is None:
                seq, text = sub.pending.popleft()
                await self._send(websocket, text)
                sub.delivered = seq
            if sub.evicted is not None:
                notice = {**sub.evicted, "resume_from": sub.delivered + 1}
                code = CLOSE_LAGGED if notice["type"] == "lagged" else CLOSE_SERVER_ERROR
                await self._send(websocket, dumps(to_wire(notice)).decode("utf-8"))
                await websocket.close(code)
                return
