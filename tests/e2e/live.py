"""A real `aicf up` process for the live tests (tests/e2e, tests/chaos): started on a free port with a database and
a var folder that outlive it, killed with any signal, restarted on the same database. Waiting is polling the live
server (Event.wait) up to a deadline."""

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicf.client import RpcClient, RpcError, RpcTransportError
from aicf.client.requester import Requester, load_or_create_requester_key

ROOT = Path(__file__).resolve().parents[2]
BELL = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'
PARAMS = """
epoch_seconds = 12
gamma_units = 1_000_000
[model_weights]
llama3-8b = 1000
llama3-70b = 6500
clip-vit-b = 300
minilm-l6-v2 = 100
smollm2-135m = 500
"""


def pause(seconds: float) -> None:
    threading.Event().wait(seconds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Up:
    """One `aicf up` (or, with command "serve", one `aicf serve` replica) process on a database and a var folder
    that outlive it."""

    db: str
    var: Path
    params: Path
    models: str
    port: int = field(default_factory=free_port)
    command: str = "up"
    proc: "subprocess.Popen[str] | None" = None
    log: Path | None = None
    starts: int = 0
    extra: tuple[str, ...] = ()  # more options (e.g. --no-providers, or ("--chain", "anvil"))
    load: bool = False  # the demo load (off: the tests send their own jobs)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 180.0) -> None:
        self.spawn()
        self.wait_started(timeout_s)

    def spawn(self) -> None:
        """Start the process and return at once (the kill loop restarts without waiting for the banner)."""
        self.starts += 1
        self.log = self.var.parent / f"{self.command}-{self.port}-{self.starts}.log"
        cmd = [sys.executable, "-m", "aicf", self.command, "--db", self.db, "--var", str(self.var),
               "--port", str(self.port), "--params", str(self.params), "--models", self.models]  # fmt: skip
        if self.command == "up":
            cmd.append("--load" if self.load else "--no-load")
        cmd += self.extra
        with self.log.open("w", encoding="utf-8") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, arguments built here
                cmd,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_started(self, timeout_s: float = 180.0) -> None:
        """Until the process answers and its banner is out."""
        assert self.proc is not None
        assert self.log is not None
        waited = 0.0
        with RpcClient(self.url + "/rpc", timeout_s=5.0) as client:
            while waited < timeout_s:
                if self.proc.poll() is not None:
                    raise AssertionError(f"aicf up exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
                try:
                    client.call("aicf.getStatus")
                    if "models served" in self.log.read_text():  # the banner is out: everything has started
                        return
                except (RpcTransportError, RpcError):
                    pass
                pause(0.2)
                waited += 0.2
        raise AssertionError(f"aicf up did not answer within {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout_s)

    def status(self) -> dict[str, Any]:
        with RpcClient(self.url + "/rpc", timeout_s=10.0) as client:
            return dict(client.call("aicf.getStatus"))

    def epoch_root(self, epoch: int) -> str:
        with RpcClient(self.url + "/rpc", timeout_s=10.0) as client:
            return str(client.call("aicf.getEpoch", {"epoch": epoch})["root"])

    def cli(self, *args: str, key: Path, timeout_s: float = 120.0) -> "subprocess.CompletedProcess[str]":
        env = {**os.environ, "AICF_URL": self.url, "AICF_REQUESTER_KEY": str(key)}
        return subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "aicf", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
        )  # fmt: skip


def assert_db_verifies(db: str) -> None:
    """`aicf db verify --db DB`, as an operator runs it, passes: balances, entries and SPEC §11's sums."""
    verified = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "aicf", "db", "verify", "--db", db],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith("ok")


def requester(up: Up, tmp_path: Path, name: str = "alice") -> Requester:
    return Requester(up.url, load_or_create_requester_key(tmp_path / f"{name}.key"), sleep=pause)
