"""Subscribe to /ws events and resume after any disconnect without missing one (SPEC §12).

`EventSubscriber.events()` yields `WsEvent`s in sequence order. It remembers the number after the last event
it yielded; when the connection drops or the server says `lagged`, it reconnects and subscribes again from
that number, so the caller sees every event of its topics exactly once, in order.
"""

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from aicf.client.backoff import Reconnect
from aicf.core.backoff import BackoffPolicy
from aicf.core.errors import AicfError

DEFAULT_RECV_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WsEvent:
    seq: int
    topic: str
    data: dict[str, Any]


class SubscriptionError(AicfError):
    """The server refused the subscription (a bad topic, a bad from_seq) or kept failing to connect."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class EventSubscriber:
    def __init__(
        self,
        url: str,
        topics: Sequence[str],
        *,
        from_seq: int | None = None,
        recv_timeout_s: float = DEFAULT_RECV_TIMEOUT_S,
        max_reconnects: int = 10,
        backoff: BackoffPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_subscribed: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.url = url
        self.topics = list(topics)
        self.next_seq = from_seq  # the first number not yet yielded; None: start at the server's head
        self.recv_timeout_s = recv_timeout_s
        self.max_reconnects = max_reconnects
        self._retry = Reconnect(backoff if backoff is not None else BackoffPolicy(base_ms=200, cap_ms=10_000), rng=rng)
        self._sleep = sleep
        self._on_subscribed = on_subscribed
        self._ws: ClientConnection | None = None
        self.reconnects = 0  # how many times a dropped or lagged connection was resumed
        self.lagged = 0  # how many of those were the server's `lagged`

    def events(self) -> Iterator[WsEvent]:
        """Events forever, resuming across disconnects. Raises TimeoutError if none comes for recv_timeout_s."""
        failures = 0
        while True:
            try:
                for event in self._session():
                    failures = 0
                    self._retry.succeeded()
                    yield event
            except (ConnectionClosed, InvalidHandshake, OSError) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                failures += 1
                if failures > self.max_reconnects:
                    raise SubscriptionError(f"{self.url}: gave up after {failures - 1} reconnects: {exc}") from exc
                self._sleep(self._retry.failed())
            self.reconnects += 1

    def _session(self) -> Iterator[WsEvent]:
        """One connection: subscribe, then yield events until the server ends it (returns) or it drops (raises)."""
        with connect(self.url, open_timeout=self.recv_timeout_s) as ws:
            self._ws = ws
            try:
                request: dict[str, Any] = {"op": "subscribe", "topics": self.topics}
                if self.next_seq is not None:
                    request["from_seq"] = self.next_seq
                ws.send(json.dumps(request))
                while True:
                    message = json.loads(ws.recv(timeout=self.recv_timeout_s))
                    kind = message.get("type")
                    if kind == "event":
                        event = WsEvent(seq=message["seq"], topic=message["topic"], data=message["data"])
                        self.next_seq = event.seq + 1
                        yield event
                    elif kind == "subscribed":
                        if self.next_seq is None:
                            self.next_seq = int(message["from_seq"])
                        if self._on_subscribed is not None:
                            self._on_subscribed(message)
                    elif kind == "lagged":
                        self.lagged += 1
                        return
                    elif kind == "error":
                        if self.next_seq is not None and "resume_from" in message:
                            return  # the server's trouble, not ours: resume
                        raise SubscriptionError(str(message.get("message")), message.get("code"))
            finally:
                self._ws = None

    def close(self) -> None:
        ws = self._ws
        if ws is not None:
            ws.close()
