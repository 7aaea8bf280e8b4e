"""Issue 15: malformed JSON-RPC at the real coordinator. `parse_body` on arbitrary bytes, and the whole /rpc endpoint
of `build_system` on a SQLite store (every real method, the real auth and limits) through a TestClient: thousands of
generated malformed requests get a JSON-RPC error and never a 500 or a traceback, and the store is unchanged
afterwards, byte for byte (every table of the SQLite file) and by `aicf db verify`'s state digest.

The requests come from a seeded generator (random.Random, so a failure names its seed and index): garbage bodies,
broken JSON, every real method with its params broken one way (a required field missing, the wrong type, out of
range, bad hex, too long), operator methods without or with a wrong token, or with the right token and params that
cannot validate, provider methods unsigned, with a broken signature or signed by a key nobody registered,
`aicf.sendTransaction` with mutated signed transactions, and batches of these. 250 requests run in the fast loop,
10,000 in the whole suite (AICF_FUZZ_RPC=n for another count)."""

import json
import os
import random
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from budget import examples
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient
from transports.test_cli_ops import SteppedClock

from aicf.bootstrap.stores import open_store
from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.client.signing import public_key_bytes, sign_auth
from aicf.core.chain import TxKind
from aicf.core.encoding import to_hex
from aicf.core.errors import AicfError
from aicf.core.ids import provider_id
from aicf.core.txs import SignedTx, encode_signed_tx, tx_signing_digest
from aicf.service.audit import verify
from aicf.service.coordinator import Capabilities
from aicf.store.interface import Store
from aicf.transports.errors import ParseError
from aicf.transports.rpc import parse_body
from fuzz.scaffold import fuzz_settings, outcome

T = 1_700_000_000
TOKEN = "fuzz-operator-token"  # noqa: S105 - a test fixture


# -- parse_body ------------------------------------------------------------------------------------------------------
@fuzz_settings(full=400, fast=100)
@given(
    body=st.binary(max_size=200)
    | st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass"))
    | st.builds(lambda n, c: (c * n).encode(), st.integers(0, 5000), st.sampled_from(["[", '{"a":', "[1,"]))
    | st.integers(0, 6000).map(lambda n: b"1" * n)
    | st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b'{"a": NaN}', b"1e999", b'"\\ud800"', b"\xef\xbb\xbf{}"])
)
def test_parse_body_returns_json_or_a_parse_error(body: bytes) -> None:
    refused = outcome(lambda: parse_body(body), ParseError)
    assert not isinstance(refused, ParseError) or str(refused).startswith("parse error:")


# -- the real coordinator ---------------------------------------------------------------------------------------------
@dataclass
class Target:
    system: System
    store: Store
    path: Path
    client: TestClient
    chain_id: int
    deployment: bytes
    member: Ed25519PrivateKey


def table_digest(path: Path) -> str:
    """Every row of every table of the SQLite file, in a stable order."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return sha256("\n".join(conn.iterdump()).encode()).hexdigest()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    path = tmp_path / "aicf.db"
    store = open_store(f"sqlite:///{path}")
    config = SystemConfig(var=tmp_path / "var", model_digests={}, operator_token=TOKEN)
    system = build_system(store, devnet_params(), config, clock=SteppedClock(T))
    with TestClient(system.app, raise_server_exceptions=False) as client:
        deployment = client.post("/rpc", json={"jsonrpc": "2.0", "method": "aicf.getDeployment", "id": 1}).json()
        chain_id = int(deployment["result"]["chain_id"])
        member = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))  # a registered provider with a stake
        system.coord.register(public_key_bytes(member), Capabilities(kinds=("quantum",), devices=("stim",)))
        system.coord.deposit_stake(provider_id(public_key_bytes(member)), 10_000, source="external")
        yield Target(system, store, path, client, chain_id, system.app.state.rpc.deployment_id, member)
    store.close()


H32 = "0x" + "ab" * 32
PK = to_hex(bytes(32))
# Each method with params that are well-formed; the generator then breaks them (never sends them as they are).
TEMPLATES: dict[str, dict[str, Any]] = {
    "aicf.addRoot": {"vendor": "amd", "name": "x", "der": "0x3000", "activation_height": 1},
    "aicf.claimPayout": {"nonce": 1},
    "aicf.devnetReorg": {"depth": 1},
    "aicf.fundProvider": {"provider_id": H32, "amount": 1},
    "aicf.getAccount": {"address": "0x" + "00" * 20},
    "aicf.getBalance": {"account": "fund"},
    "aicf.getEpoch": {"epoch": 0},
    "aicf.getJob": {"id": H32},
    "aicf.getProvider": {"id": H32},
    "aicf.getResult": {"id": H32},
    "aicf.getTransaction": {"tx_hash": H32},
    "aicf.heartbeat": {"lease_ids": [H32]},
    "aicf.listJobs": {"limit": 10, "statuses": ["QUEUED"]},
    "aicf.listProviders": {"limit": 10},
    "aicf.readResult": {"id": H32},
    "aicf.register": {"public_key": PK, "kinds": ["quantum"], "devices": ["stim"], "stake": 10},
    "aicf.releaseLease": {"lease_id": H32},
    "aicf.rotateRoot": {"vendor": "amd", "name": "x", "der": "0x3000", "activation_height": 1, "overlap_blocks": 1},
    "aicf.sendTransaction": {"tx": "0x00"},
    "aicf.setPolicy": {"kind": "sev-snp", "activation_height": 1},
    "aicf.stake": {"amount": 1},
    "aicf.submitProof": {"envelope": "0xa0"},
    "aicf.submitProofs": {"envelopes": ["0xa0"]},
    "aicf.withdraw": {"amount": 1},
}
OPERATOR = {"aicf.addRoot", "aicf.devnetReorg", "aicf.fundProvider", "aicf.rotateRoot", "aicf.setPolicy"}
PROVIDER = {"aicf.claimPayout", "aicf.heartbeat", "aicf.register", "aicf.releaseLease", "aicf.stake",
            "aicf.submitProof", "aicf.submitProofs", "aicf.withdraw", "aicf.nextLease"}  # fmt: skip
# Values no field of any template accepts (so a broken request with the right token or signer still cannot act;
# not null, which an optional field takes, and no dropped field, as an optional one has a default).
UNACCEPTABLE: list[Any] = [{"x": [1]}, [[[]]], {"": None}, [{"a": 1}]]
ODD: list[Any] = [*UNACCEPTABLE, None, -1, 0, 2**63, 2**64, -(2**63) - 1, 10**30, 1.5, float("1e308"), True,
                  False, "", "0x", "0xzz", "0x1", "ab" * 32, "0x" + "ab" * 33, "x" * 70_000, "\u0000", "\ud7ff",
                  [1, 2], {}, "NaN"]  # fmt: skip


class Generator:
    """Malformed requests, reproducible from a seed."""

    def __init__(self, seed: int, target: Target) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test input, not a secret
        self.target = target
        self.methods = sorted([m.name for m in target.system.app.state.rpc.registry])
        self.stranger = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

    def broken_params(self, method: str, *, strict: bool) -> Any:
        """The template with one thing broken; `strict` breaks it so that no validator could accept it."""
        r = self.rng
        params = dict(TEMPLATES.get(method, {}))
        if not params or r.random() < 0.1:
            return r.choice([[1, 2], "params", 7, {"x": "y" * r.randint(0, 100)}, [{}], *([] if strict else [None])])
        name = r.choice(sorted(params))
        how = r.choice(["drop", "value", "value", "extra"] if not strict else ["value"])
        if how == "drop":
            del params[name]
        elif how == "value":
            params[name] = r.choice(UNACCEPTABLE if strict else ODD)
        else:
            params[r.choice(["amount", "zzz", "id", "auth", "__proto__"])] = r.choice(ODD)
        if not strict and r.random() < 0.2:
            params = list(params.values())  # type: ignore[assignment]
        return params

    def request(self) -> Any:
        r = self.rng
        method = r.choice([*self.methods, "aicf.nope", "rpc.x", "", "AICF.GETSTATUS"])
        rid: Any = r.choice([1, "a", None, 2**70, 1.5, [1], {"a": 1}, True]) if r.random() < 0.3 else r.randint(1, 99)
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
        if method in OPERATOR and r.random() < 0.5:
            request["params"] = self.broken_params(method, strict=True)
            return request, TOKEN
        request["params"] = self.broken_params(method, strict=False) if method in TEMPLATES or r.random() < 0.5 else {}
        if method in PROVIDER and r.random() < 0.4:  # signed by the registered provider: the params cannot validate
            request["params"] = self.broken_params(method, strict=True)
            self._sign(request, self.target.member)
        elif method in PROVIDER or r.random() < 0.1:
            self._sign(request, self.stranger)
        if r.random() < 0.1:
            request["jsonrpc"] = r.choice(["1.0", 2, None])
        return request, r.choice([None, None, "wrong", TOKEN[:-1]])

    def _sign(self, request: dict[str, Any], signer: Ed25519PrivateKey) -> None:
        r = self.rng
        params = request["params"]
        if not isinstance(params, dict):
            request["auth"] = {"provider_id": H32, "ts": T, "nonce": "0x" + "00" * 16, "sig": "0x00"}
            return
        try:
            auth = sign_auth(signer, request["method"], params, T, secrets.token_bytes(16),
                             self.target.deployment)  # fmt: skip
        except (AicfError, ValueError, TypeError, OverflowError):  # params a signature cannot cover (null, 2^64)
            auth = {"provider_id": H32, "ts": T, "nonce": "0x" + "00" * 16, "sig": "0x" + "00" * 64}
        which = r.choice(["as signed", "sig", "ts", "nonce", "provider_id", "deployment", "drop"])
        if which == "sig":
            auth["sig"] = "0x" + "11" * 64
        elif which in ("ts", "nonce", "provider_id"):
            auth[which] = r.choice(ODD)
        elif which == "deployment":
            auth["deployment"] = H32
        elif which == "drop":
            del auth[r.choice(sorted(auth))]
        request["auth"] = auth

    def mutated_tx(self) -> bytes:
        r = self.rng
        key = self.stranger
        body: dict[str, object] = {"amount": r.randint(1, 10**6)}
        kind = TxKind.DEPOSIT
        nonce, chain = r.randint(0, 3), self.target.chain_id
        pub = public_key_bytes(key)
        sig = key.sign(tx_signing_digest(chain, pub, kind, nonce, body))
        raw = encode_signed_tx(SignedTx(chain_id=chain, public_key=pub, nonce=nonce, kind=kind, body=body, sig=sig))
        i = r.randrange(len(raw))
        how = r.choice(["flip", "truncate", "extend"])
        if how == "flip":
            return raw[:i] + bytes([raw[i] ^ r.randint(1, 255)]) + raw[i + 1 :]
        if how == "truncate":
            return raw[:i]
        return raw + bytes([r.randint(0, 255)])

    def body(self) -> tuple[bytes, str | None, str]:
        """(raw body, bearer token or None, content type)."""
        r = self.rng
        roll = r.random()
        ctype = "application/json" if r.random() < 0.95 else r.choice(["text/plain", "", "application/cbor"])
        if roll < 0.08:
            return bytes(r.randrange(256) for _ in range(r.randint(0, 80))), None, ctype
        if roll < 0.14:
            one, _ = self.request()
            text = json.dumps(one, allow_nan=True)
            return text[: r.randint(0, len(text))].encode(), None, ctype
        if roll < 0.18:
            depth = r.randint(50, 3000)
            return (("[" * depth) + ("]" * depth)).encode(), None, ctype
        if roll < 0.28:
            tx = self.mutated_tx()
            request = {"jsonrpc": "2.0", "method": "aicf.sendTransaction", "params": {"tx": to_hex(tx)}, "id": 1}
            return json.dumps(request).encode(), None, ctype
        if roll < 0.38:
            batch = [self.request()[0] for _ in range(r.randint(0, 6))]
            return json.dumps(batch, allow_nan=True).encode(), None, ctype
        request, token = self.request()
        return json.dumps(request, allow_nan=True).encode("utf-8", "surrogatepass"), token, ctype


def _send(target: Target, raw: bytes, token: str | None, ctype: str) -> None:
    headers = {"content-type": ctype} if ctype else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = target.client.post("/rpc", content=raw, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text[:500], raw[:300])
    assert "Traceback" not in response.text, response.text[:500]
    assert 'File "' not in response.text, response.text[:500]
    if response.status_code != 200:
        return
    answers = response.json()
    for answer in answers if isinstance(answers, list) else [answers]:
        assert answer["jsonrpc"] == "2.0"
        if "error" in answer:
            assert answer["error"]["code"] != -32603, (answer, raw[:300])  # an internal error is a bug
            assert answer["error"]["message"]
        else:  # only reads may succeed, and they change nothing
            assert answer["result"] is not None or True


def _run(target: Target, seed: int, count: int) -> None:
    gen = Generator(seed, target)
    before = (table_digest(target.path), verify(target.store).digest)
    for i in range(count):
        raw, token, ctype = gen.body()
        try:
            _send(target, raw, token, ctype)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}, request {i}: {exc}") from None
    after = (table_digest(target.path), verify(target.store).digest)
    assert after == before, "malformed requests changed the store"


def test_malformed_requests_to_the_coordinator_change_nothing(target: Target) -> None:
    _run(target, seed=15, count=examples(int(os.environ.get("AICF_FUZZ_RPC", "10000")), fast=250))
