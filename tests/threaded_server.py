"""A real uvicorn on 127.0.0.1 in a background thread, for the tests that talk to an app over TCP.

The socket is bound and listening before the thread starts, so a client that connects before uvicorn's loop runs
simply waits in the backlog. It is made with proto IPPROTO_TCP, as uvicorn's own bind makes it: asyncio sets
TCP_NODELAY only on such sockets, and without it a kept-alive client waits out the kernel's delayed ACK (about
40 ms) on every request whose response uvicorn writes in two sends.
"""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

JOIN_S = 10.0


@dataclass(frozen=True, slots=True)
class Listening:
    port: int
    server: uvicorn.Server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def listening_socket(backlog: int = 64) -> socket.socket:
    """A TCP socket on 127.0.0.1 and a free port, listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


@contextmanager
def serve_in_thread(app: Any, *, backlog: int = 64, name: str = "test-api", **config: Any) -> Iterator[Listening]:
    """Serve `app` (uvicorn.Config's other arguments in `config`; log level warning unless given) until the block
    ends, then stop the server, join its thread and close the socket."""
    sock = listening_socket(backlog)
    server = uvicorn.Server(uvicorn.Config(app, **{"log_level": "warning", **config}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        yield Listening(sock.getsockname()[1], server)
    finally:
        server.should_exit = True
        thread.join(JOIN_S)
        sock.close()
