"""Secrets on disk and in the environment: the operator token and private files (docs/SECURITY.md).

The operator token never travels as a command-line argument (every local user can read a process's arguments
in /proc) and is never printed. `aicf up` takes it from $AICF_OPERATOR_TOKEN or from `var/operator.token`,
which it creates, readable by its owner only, with a fresh random token when missing; the CLIs take it from
$AICF_OPERATOR_TOKEN or from a file named by `--operator-token-file`. A token file that others may read is
refused, as ssh refuses such a key: the secret may already be out.
"""

import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aicf.core.errors import AicfError

OPERATOR_TOKEN_ENV: Final = "AICF_OPERATOR_TOKEN"  # noqa: S105 - the variable's name, not a secret
OPERATOR_TOKEN_FILE: Final = "operator.token"  # noqa: S105 - the file's name, not a secret
MIN_TOKEN_CHARS: Final = 16  # a token from the environment shorter than this is a mistake or a guessable one
TOKEN_BYTES: Final = 32  # entropy of a generated token (token_urlsafe: 43 characters)
PRIVATE_MODE: Final = 0o600
TOKEN_HOWTO: Final = (
    f"set {OPERATOR_TOKEN_ENV}, or pass --operator-token-file PATH "
    f"(a 0600 file, e.g. `aicf up`'s var/{OPERATOR_TOKEN_FILE})"
)
RETIRED_TOKEN_FLAG: Final = (
    "the operator token is no longer taken as an argument (every local user can read a process's arguments): "
    + TOKEN_HOWTO
)


class SecretFileError(AicfError):
    """A secret file that cannot be created or read, or that others may read."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class OperatorTokenError(AicfError):
    """The operator token given in the environment is unusable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorToken:
    value: str = field(repr=False)  # never in a log line or a traceback's locals by accident
    source: str  # where it came from, for the banner: a file path or $AICF_OPERATOR_TOKEN


def create_private_file(path: Path, text: str) -> None:
    """Write `text` to a new file only its owner may read or write: created with mode 0600 in one step
    (O_EXCL, so an existing file or a planted symlink is never written through). Raises FileExistsError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())


def read_secret_file(path: Path) -> str:
    """The secret in `path`, stripped. Raises SecretFileError if it is missing, empty, or readable by others."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SecretFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(path, f"cannot read: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            path, f"group or others may access it (mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )
    if not text:
        raise SecretFileError(path, "the file is empty")
    return text


def load_or_create_operator_token(var: Path, environ: Mapping[str, str]) -> OperatorToken:
    """`aicf up`'s operator token: $AICF_OPERATOR_TOKEN when set, else `var/operator.token`, created (0600)
    with a fresh random token when missing. Raises OperatorTokenError or SecretFileError."""
    from_env = environ.get(OPERATOR_TOKEN_ENV, "").strip()
    if from_env:
        if len(from_env) < MIN_TOKEN_CHARS:
            raise OperatorTokenError(
                f"{OPERATOR_TOKEN_ENV}: the operator token must be at least {MIN_TOKEN_CHARS} characters, "
                f"got {len(from_env)}"
            )
        return OperatorToken(value=from_env, source=f"${OPERATOR_TOKEN_ENV}")
    path = var / OPERATOR_TOKEN_FILE
    try:
        create_private_file(path, secrets.token_urlsafe(TOKEN_BYTES) + "\n")
    except FileExistsError:
        pass  # kept from an earlier run: clients configured with it keep working
    except OSError as exc:
        raise SecretFileError(path, f"cannot create: {exc.strerror}") from None
    return OperatorToken(value=read_secret_file(path), source=str(path))


def operator_token_for_client(token_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """A CLI's operator token: the file named by --operator-token-file, else $AICF_OPERATOR_TOKEN, else None.
    Raises SecretFileError for a file that is missing, empty or readable by others."""
    if token_file is not None:
        return read_secret_file(token_file)
    return environ.get(OPERATOR_TOKEN_ENV, "").strip() or None
