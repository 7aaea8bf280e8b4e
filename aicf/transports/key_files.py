"""The operator's key files (docs/SECURITY.md, docs/TRAPS.md): its Ed25519 signing key and its trap secret,
each created 0600 on the first run and kept across restarts.
"""

import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aicf.transports.secret_files import SecretFileError


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The operator's Ed25519 key (it signs acceptance records and lease grants), kept in a 0600 file."""
    if path.exists():
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text(encoding="utf-8").strip()))
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(32)
    path.touch(mode=0o600)
    path.write_text(seed.hex(), encoding="utf-8")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_or_create_secret(path: Path) -> bytes:
    """The operator's trap secret (docs/TRAPS.md): 32 random bytes from `secrets`, hex in a 0600 file beside
    operator.key, made on the first run and kept across restarts (committed seeds must stay revealable). A file
    that group or others may read, or that is not 32 bytes of hex, is refused: the secret would not be secret."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SecretFileError(path, f"mode {mode:04o} lets others read the trap secret; chmod 600 it")
        try:
            secret = bytes.fromhex(path.read_text(encoding="utf-8").strip())
        except ValueError as exc:
            raise SecretFileError(path, f"not hex: {exc}") from exc
        if len(secret) != 32:
            raise SecretFileError(path, f"the trap secret must be 32 bytes, got {len(secret)}")
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(secret.hex(), encoding="utf-8")
    return secret


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
