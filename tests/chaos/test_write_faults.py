"""Issue 15 item 3: disk full and a read-only database under a real `aicf up` on SQLite.

- **disk full**: the process's file size limit (RLIMIT_FSIZE, lowered from outside with prlimit(2) to the size its
  database files have now, then raised again). A small tmpfs would need root; RLIMIT_FSIZE works for any user and
  fails the next write that grows a file exactly as a full disk does (SQLite sees a short write). `aicf up`'s
  output goes to a pipe here, so its log lines are not themselves cut by the limit.
- **read-only**: `chattr +i` on the database and its WAL (root only). chmod does not reach a file a process has
  open already, and root writes through file permissions anyway; the immutable flag refuses writes to open files
  for everyone.

Either way the coordinator must say so (/readyz 503 naming the cause, a log line naming "disk full" or "the
database is read-only"), lose nothing, and go on by itself once the fault is lifted, without a restart; the gap is
credited as an outage (nobody slashed for it); `aicf db verify` passes after."""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from e2e.live import BELL, ROOT, Up, pause, requester

from aicf.client import RpcClient, RpcError, RpcTransportError
from chaos.test_faults import CHAOS_PARAMS, _db_verify

pytestmark = pytest.mark.slow
FAULT_S = 15  # longer than the outage threshold (10 s): the gap is credited


class PipedUp(Up):
    """`aicf up` with its output read through a pipe by a thread of the test (a file the child wrote itself would
    be cut by the child's own file size limit)."""

    lines: list[str]

    def start(self, timeout_s: float = 180.0) -> None:
        self.starts += 1
        self.lines = []
        cmd = [sys.executable, "-m", "aicf", "up", "--db", self.db, "--var", str(self.var),
               "--port", str(self.port), "--params", str(self.params), "--models", self.models,
               "--no-load"]  # fmt: skip
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        out = self.proc.stdout
        assert out is not None
        threading.Thread(target=lambda: self.lines.extend(iter(out.readline, "")), daemon=True).start()
        waited = 0.0
        with RpcClient(self.url + "/rpc", timeout_s=5.0) as client:
            while waited < timeout_s:
                assert self.proc.poll() is None, "".join(self.lines)[-3000:]
                try:
                    client.call("aicf.getStatus")
                    if any("models served" in line for line in self.lines):
                        return
                except (RpcTransportError, RpcError):
                    pass
                pause(0.2)
                waited += 0.2
        raise AssertionError(f"aicf up did not answer within {timeout_s} s:\n{''.join(self.lines)[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL, timeout_s: float = 30.0) -> int:
        code = super().kill(sig, timeout_s)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


def _readyz(up: Up) -> tuple[int, dict[str, object]]:
    with httpx.Client(timeout=10.0) as client:
        answer = client.get(up.url + "/readyz")
    return answer.status_code, answer.json()


def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    waited = 0.0
    while waited < timeout_s:
        if check():
            return
        pause(0.5)
        waited += 0.5
    raise AssertionError(f"{what} within {timeout_s} s")


def _ready(up: Up) -> bool:
    return _readyz(up)[0] == 200


@pytest.fixture
def up(tmp_path: Path) -> Iterator[PipedUp]:
    params = tmp_path / "params.toml"
    params.write_text(CHAOS_PARAMS, encoding="utf-8")
    up = PipedUp(db=f"sqlite:///{tmp_path / 'aicf.db'}", var=tmp_path / "var", params=params, models="none")
    yield up
    if up.proc is not None and up.proc.poll() is None:
        up.kill()


def _fault_and_recover(up: PipedUp, tmp_path: Path, inject: Callable[[], object], lift: Callable[[], object],
                       cause: str) -> None:  # fmt: skip
    up.start()
    with requester(up, tmp_path) as r:
        r.wait_included(r.deposit(10**11), timeout_s=120)
        before = [r.submit_quantum(BELL, 4) for _ in range(2)]
        settled = [r.wait(tx, timeout_s=180, poll_s=0.5) for tx in before]
        assert [rec["status"] for rec in settled] == ["SETTLED", "SETTLED"]
        _until(lambda: _ready(up), 60, "aicf up was not ready before the fault")
        inject()
        try:
            _until(lambda: not _ready(up), 30, "/readyz did not report the fault")
            code, body = _readyz(up)
            listed = body["reasons"]
            assert isinstance(listed, list)
            reasons = " ".join(str(x) for x in listed)
            assert code == 503
            assert cause in reasons, body
            pause(FAULT_S)
            assert up.proc is not None
            assert up.proc.poll() is None, "aicf up ended on the fault"
        finally:
            lift()
        _until(lambda: _ready(up), 60, "aicf up did not recover by itself")
        after = [r.submit_quantum(BELL, 4) for _ in range(2)]
        records = settled + [r.wait(tx, timeout_s=180, poll_s=0.5) for tx in after]
    assert [rec["status"] for rec in records] == ["SETTLED"] * 4, records
    failed = [line for line in up.lines if "coordinator pass failed" in line]
    assert failed, "no log line reported the failed passes"
    assert all(cause in line for line in failed), failed  # the cause is named, not a bare "disk I/O error"
    assert any("coordinator pass succeeded again" in line for line in up.lines)
    status = up.status()
    assert status["outages"]["count"] >= 1, status["outages"]  # the time it could not write is credited
    assert not [s for s in status["recent_slashes"] if s["reason"] == "MISSED_LEASE"], status["recent_slashes"]
    assert up.kill(signal.SIGTERM) == 0
    assert _db_verify(up.db)["ok"] is True


def test_a_full_disk_is_reported_loses_nothing_and_aicf_up_recovers_by_itself(up: PipedUp, tmp_path: Path) -> None:
    def inject() -> None:
        assert up.proc is not None
        size = max(p.stat().st_size for p in tmp_path.iterdir() if re.fullmatch(r"aicf\.db(-wal)?", p.name))
        resource.prlimit(up.proc.pid, resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    def lift() -> None:
        assert up.proc is not None
        resource.prlimit(up.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    _fault_and_recover(up, tmp_path, inject, lift, "disk full")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="chattr +i needs root")
def test_a_read_only_database_is_reported_loses_nothing_and_aicf_up_recovers_by_itself(
    up: PipedUp, tmp_path: Path
) -> None:
    files = [str(tmp_path / "aicf.db"), str(tmp_path / "aicf.db-wal")]
    _fault_and_recover(
        up,
        tmp_path,
        lambda: subprocess.run(["chattr", "+i", *files], check=True),  # noqa: S603, S607
        lambda: subprocess.run(["chattr", "-i", *files], check=True),  # noqa: S603, S607
        "the database is read-only",
    )
