"""Run anvil (a real Ethereum node, from the npm package @foundry-rs/anvil-linux-amd64) as a child process.

`scripts/install-chain` installs it into contracts/node_modules; `find_anvil` looks at $AICF_ANVIL, then there,
then on PATH. The node listens on 127.0.0.1 only, on a free port; its output goes to a log file (anvil
block-buffers a pipe, so the "Listening on" line cannot be waited for), and `start_anvil` returns once the node
answers `eth_chainId` with the chain id it was given.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aicf.core.errors import AicfError

REPO_ANVIL = Path(__file__).resolve().parents[2] / "contracts" / "node_modules" / ".bin" / "anvil"
_POLL_S = 0.05


class AnvilError(AicfError):
    """anvil is missing, or did not start."""


def find_anvil() -> Path | None:
    """$AICF_ANVIL if set, else the repo's contracts/node_modules/.bin/anvil, else `anvil` on PATH."""
    configured = os.environ.get("AICF_ANVIL")
    if configured:
        return Path(configured)
    if REPO_ANVIL.exists():
        return REPO_ANVIL
    found = shutil.which("anvil")
    return Path(found) if found else None


@dataclass
class Anvil:
    process: subprocess.Popen[bytes]
    port: int
    chain_id: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the node (kill it if it has not exited within 10 s), wait for it, remove its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_anvil(
    binary: Path, *, chain_id: int = 31337, extra_args: Sequence[str] = (), startup_timeout_s: float = 60.0
) -> Anvil:
    """Start anvil on 127.0.0.1 and a free port; raise AnvilError with its last output if it does not answer."""
    port = free_port()
    fd, log_name = tempfile.mkstemp(prefix="aicf-anvil-", suffix=".log")
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id), *extra_args]
    try:
        process = subprocess.Popen(args, stdout=fd, stderr=subprocess.STDOUT)  # noqa: S603 - fixed argv, no shell
    except OSError as exc:
        os.close(fd)
        Path(log_name).unlink(missing_ok=True)
        raise AnvilError(f"cannot run anvil at {binary}: {exc}") from exc
    os.close(fd)
    anvil = Anvil(process=process, port=port, chain_id=chain_id, log_path=Path(log_name))
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if process.poll() is not None:
            tail = anvil.log_tail()
            anvil.stop()
            raise AnvilError(f"anvil exited with {process.returncode}: {tail}")
        answered = _chain_id(anvil.url)
        if answered == chain_id:
            return anvil
        if time.monotonic() >= deadline:
            tail = anvil.log_tail()
            anvil.stop()
            raise AnvilError(f"anvil did not answer on {anvil.url} within {startup_timeout_s} s: {tail}")
        time.sleep(_POLL_S)


def _chain_id(url: str) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310 - our own loopback node
            return int(json.loads(response.read())["result"], 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return None
