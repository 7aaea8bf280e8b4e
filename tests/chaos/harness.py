"""Pieces shared by the kill loop (tests/chaos/test_kill_loop.py) and the two-replica soak (test_soak.py): a fresh
PostgreSQL database, one var folder for the replicas, outside quantum provider processes, targets killed and
restarted at once, the tally of kills by target, and the progress and result lines."""

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from e2e.live import ROOT, Up

from aicf.client import RpcError, RpcTransportError
from aicf.transports.key_files import load_or_create_key, load_or_create_secret
from aicf.transports.secret_files import load_or_create_operator_token


def shared_var(var: Path) -> Path:
    """One var folder for every replica (docs/DEPLOY.md), made once; returns the operator token's file."""
    var.mkdir(parents=True, exist_ok=True)
    load_or_create_key(var / "operator.key")
    load_or_create_secret(var / "trap.secret")
    load_or_create_operator_token(var, {})
    return var / "operator.token"


@dataclass
class Proc:
    """One `aicf provider run` process (`argv` until a start got through start-up; `restart_argv` after)."""

    name: str
    argv: list[str]
    restart_argv: list[str]
    log: Path
    proc: "subprocess.Popen[str] | None" = None
    starts: int = 0

    def spawn(self) -> None:
        """The first argv until one start got through its start-up (funded, registered: the banner line is in the
        log; a start killed before its --fund ran left nothing to register with), then `restart_argv`."""
        set_up = self.log.exists() and "Ctrl-C stops." in self.log.read_text(encoding="utf-8")
        argv = self.restart_argv if set_up else self.argv
        self.starts += 1
        with self.log.open("a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "aicf", *argv],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def quantum_provider(name: str, url: str, tmp: Path, token: Path, heartbeat_s: int) -> Proc:
    """An outside quantum provider on stim talking to `url`; its first start is funded, staked and pins its
    device key as a simulator, a restart only runs it again (it resumes the live leases it holds)."""
    common = ["provider", "run", "--url", url, "--kind", "quantum", "--key-file", str(tmp / f"{name}.key"),
              "--operator-token-file", str(token), "--heartbeat-s", str(heartbeat_s), "--poll-s", "0.5",
              "--device-key-file", str(tmp / f"{name}.device.key")]  # fmt: skip
    first = [*common, "--fund", "1000000000", "--stake", "1000000000", "--pin-device", "simulator"]
    return Proc(name=name, argv=first, restart_argv=common, log=tmp / f"{name}.log")


@dataclass
class Target:
    """A process the loop may kill: a replica (`Up`, command serve) or a provider (`Proc`)."""

    name: str
    replica: Up | None = None
    provider: Proc | None = None

    def running(self) -> bool:
        if self.replica is not None:
            return self.replica.proc is not None and self.replica.proc.poll() is None
        assert self.provider is not None
        return self.provider.running()

    def ready(self) -> bool:
        """Running, and for a replica answering (a replica still starting is killed only sometimes)."""
        if not self.running():
            return False
        if self.replica is None:
            return True
        try:
            self.replica.status()
        except (RpcTransportError, RpcError):
            return False
        return True

    def sigkill(self) -> None:
        """SIGKILL, then started again at once (without waiting for it to be ready)."""
        if self.replica is not None:
            assert self.replica.proc is not None
            if self.replica.proc.poll() is None:
                self.replica.proc.send_signal(signal.SIGKILL)
                self.replica.proc.wait(timeout=30)
            self.replica.spawn()
            return
        assert self.provider is not None
        self.provider.kill()
        self.provider.spawn()

    def stop(self) -> None:
        if self.replica is not None and self.replica.proc is not None and self.replica.proc.poll() is None:
            self.replica.proc.kill()
            self.replica.proc.wait(timeout=30)
        if self.provider is not None:
            self.provider.kill()


@dataclass
class Tally:
    kills: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # processes found ended by themselves, and restarted
    started_at: float = 0.0

    def line(self, now: float, jobs: int) -> str:
        minutes = max(now - self.started_at, 1e-9) / 60
        total = sum(self.kills.values())
        by = ", ".join(f"{name} {n}" for name, n in sorted(self.kills.items()))
        return f"kill-loop: {total} kills in {minutes:.1f} min ({total / minutes:.1f}/min): {by}; {jobs} jobs sent"

    def figures(self, now: float) -> dict[str, object]:
        minutes = max(now - self.started_at, 1e-9) / 60
        total = sum(self.kills.values())
        return {
            "kills": total,
            "kills_by_target": dict(sorted(self.kills.items())),
            "minutes": round(minutes, 1),
            "kills_per_min": round(total / minutes, 1),
            "exited_by_themselves": dict(sorted(self.exits.items())),
        }


def result_line(figures: dict[str, object]) -> str:
    """The run's one line of figures for docs/RELIABILITY.md's table."""
    return f"kill-loop result: {json.dumps(figures, sort_keys=True)}"
