"""One column list per table: it gives the SELECT list the query files expand (`{jobs}`), the insert parameters
(`Table.params`) and the decoder (`Table.decode`, by column name, never by position).

A column names its SQL column, the record field it holds (when they differ), how a value is stored (`encode`,
default as is) and how it is read back (`decode`: checks the type, builds enums and tuples). In the query files
`{name}` expands to the table's column list, `{name:j}` to the same prefixed `j.`, `{name:insert}` to the columns an
INSERT or COPY writes, in `params` order.
"""

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import cbor2

from aicf.core.chain import CancelOutcome, CancelRequest, Claim, IngestedBlock, Job, ProofInclusion, RefusedTx
from aicf.core.chain import Transition as JobTransition
from aicf.core.encoding import canonical_cbor
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import LedgerEntry, Posting
from aicf.core.operator import OperatorChange
from aicf.core.records import (
    BatchRecord,
    DecisionRecord,
    Event,
    GrantRecord,
    LeaseRecord,
    ProofRecord,
    Provider,
    ResultRecord,
    SlashRecord,
    TrapRecord,
    TrapSeedRecord,
)
from aicf.core.registry import ProviderStatus
from aicf.core.settlement import Payout
from aicf.core.trust import PolicyRecord, RootRecord, TrustChange
from aicf.store.interface import CorruptValueError, IdempotencyRecord, NonceRecord, ProviderMove, SchemaError

R = TypeVar("R")
Row = Sequence[object]
_EMPTY_LIST = canonical_cbor([])
_BRACES = re.compile(r"\{([a-z_]+)(?::([a-z_]+))?\}")


# -- value decoders: a stored value back to its Python type, refusing a value of another type -------------------
def as_int(v: object) -> int:
    if isinstance(v, bool):
        return int(v)
    if not isinstance(v, int):
        raise CorruptValueError("an integer", v)
    return v


def as_bytes(v: object) -> bytes:
    if isinstance(v, memoryview):
        return v.tobytes()
    if not isinstance(v, bytes):
        raise TypeError(f"expected a bytes column, got {type(v).__name__}")
    return v


def as_str(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a text column, got {type(v).__name__}")
    return v


def as_opt_int(v: object) -> int | None:
    return None if v is None else as_int(v)


def as_opt_bytes(v: object) -> bytes | None:
    return None if v is None else as_bytes(v)


def texts(values: Sequence[str]) -> bytes:
    """A tuple of strings as a canonical CBOR list (one encoding on both backends)."""
    return canonical_cbor(list(values)) if values else _EMPTY_LIST


def texts_of(v: object) -> tuple[str, ...]:
    return _decode_texts(as_bytes(v))


@functools.lru_cache(maxsize=4096)
def _decode_texts(raw: bytes) -> tuple[str, ...]:
    """Capability lists repeat across providers (the matcher reloads them all after a registry change)."""
    return tuple(as_str(x) for x in cbor2.loads(raw))


def _byte_list(values: Sequence[bytes]) -> bytes:
    return canonical_cbor(list(values)) if values else _EMPTY_LIST


def _byte_list_of(v: object) -> tuple[bytes, ...]:
    return tuple(as_bytes(x) for x in cbor2.loads(as_bytes(v)))


def _qos(qos: Mapping[str, int]) -> bytes:
    return canonical_cbor(dict(qos))


def _qos_of(v: object) -> dict[str, int]:
    loaded = cbor2.loads(as_bytes(v))
    return {as_str(k): as_int(x) for k, x in loaded.items()}


def _value(v: Any) -> object:
    return v.value


def _opt_value(v: Any) -> object:
    return None if v is None else v.value


# -- columns and tables ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    name: str
    decode: Callable[[object], object]
    encode: Callable[[Any], object] | None = None  # None: stored as the record holds it
    field: str = ""  # the record field, when it is not named like the column
    insert: bool = True  # False: the database assigns it (a seq)

    @property
    def attr(self) -> str:
        return self.field or self.name


class Table(Generic[R]):
    """A table's columns in SELECT order, with the record they decode to."""

    def __init__(self, name: str, build: Callable[..., R], *columns: Column) -> None:
        self.name = name
        self.columns = columns
        self._writes = tuple((c.name, c.attr, c.encode) for c in columns if c.insert)
        # the record of one row selected with `select()`; a row of another width is refused (ValueError)
        self.decode: Callable[[Row], R] = _row_decoder(name, build, columns)
        # the insert parameters of a record, by column name, in `insert_columns()` order
        self.params: Callable[[object], dict[str, object]] = _params_builder(name, columns)

    def select(self, alias: str = "") -> str:
        prefix = alias + "." if alias else ""
        return ", ".join(prefix + c.name for c in self.columns)

    def insert_columns(self) -> str:
        return ", ".join(name for name, _, _ in self._writes)


# a value of exactly this type is what the decoder returns unchanged (the common case, checked inline)
_PASSES_AS_IS: dict[Callable[[object], object], type] = {
    as_int: int,
    as_bytes: bytes,
    as_str: str,
    as_opt_int: int,
    as_opt_bytes: bytes,
}


def _row_decoder(name: str, build: Callable[..., R], columns: Sequence[Column]) -> Callable[[Row], R]:
    """`Table.decode` for one table as a function of its own, built once: the row unpacked into locals, each
    value checked inline when the column's decoder would return it unchanged (`_PASSES_AS_IS`), the record built
    with its fields by name. Reads decode every row they return, so the generic per-column loop showed in
    profiles (issue 18). Field names are the record's own identifiers; nothing outside the column list goes in."""
    scope: dict[str, object] = {"build": build, "ValueError": ValueError}
    names = [f"v{i}" for i in range(len(columns))]
    args = []
    for i, c in enumerate(columns):
        if not c.attr.isidentifier():
            raise SchemaError(f"table {name}: column {c.name} names no field ({c.attr!r})")
        scope[f"d{i}"] = c.decode
        kind = _PASSES_AS_IS.get(c.decode)
        if kind is None:
            args.append(f"{c.attr}=d{i}(v{i})")
        else:
            scope[f"t{i}"] = kind
            args.append(f"{c.attr}=v{i} if type(v{i}) is t{i} else d{i}(v{i})")
    width = len(columns)
    source = (
        "def decode(row):\n"
        f"    if len(row) != {width}:\n"
        f"        raise ValueError(f'{name}: a row of {{len(row)}} values, expected {width} columns')\n"
        f"    {', '.join(names)}{',' if width == 1 else ''} = row\n"
        f"    return build({', '.join(args)})\n"
    )
    exec(compile(source, f"<decoder of {name}>", "exec"), scope)  # noqa: S102 - source built above from names
    decode: Callable[[Row], R] = scope["decode"]  # type: ignore[assignment]
    return decode


def _params_builder(name: str, columns: Sequence[Column]) -> Callable[[object], dict[str, object]]:
    """`Table.params` for one table as a function of its own, built once like `_row_decoder`: one dict display
    of the inserted columns, each the record's attribute, through the column's encoder when it has one."""
    scope: dict[str, object] = {}
    items = []
    for i, c in enumerate(c for c in columns if c.insert):
        if not (c.attr.isidentifier() and c.name.isidentifier()):
            raise SchemaError(f"table {name}: column {c.name} names no field ({c.attr!r})")
        if c.encode is None:
            items.append(f"{c.name!r}: r.{c.attr}")
        else:
            scope[f"e{i}"] = c.encode
            items.append(f"{c.name!r}: e{i}(r.{c.attr})")
    source = f"def params(r):\n    return {{{', '.join(items)}}}\n"
    exec(compile(source, f"<insert parameters of {name}>", "exec"), scope)  # noqa: S102 - built above from names
    params: Callable[[object], dict[str, object]] = scope["params"]  # type: ignore[assignment]
    return params


def _col(name: str, decode: Callable[[object], object] = as_int, **kw: Any) -> Column:
    return Column(name, decode, **kw)


def _bytes(name: str, **kw: Any) -> Column:
    return Column(name, as_bytes, **kw)


def _text(name: str, **kw: Any) -> Column:
    return Column(name, as_str, **kw)


def _opt(name: str, **kw: Any) -> Column:
    return Column(name, as_opt_int, **kw)


BLOCKS = Table(
    "blocks", IngestedBlock,
    _col("height"), _bytes("hash"), _bytes("parent"), _col("time"), _bytes("producer"), _bytes("beacon"),
    _col("issuance"), _col("fees"), _col("epoch"), Column("final", bool),
)  # fmt: skip

JOBS = Table(
    "jobs", Job,
    _bytes("task_id"), _col("chain_id"), _bytes("tx_hash"), _bytes("caller"), _text("kind"), _bytes("payload"),
    _bytes("payload_hash"), _text("model"), _col("fee_per_unit"), _col("tier"), _col("max_units_mu"),
    _col("escrow"), _col("depth"), _col("deadline_height"), Column("regions", texts_of, texts),
    Column("allowlist", _byte_list_of, _byte_list), Column("tee_required", bool), _col("enqueue_height"),
    _col("enqueue_tx_index"), Column("status", lambda v: JobStatus(as_str(v)), _value), _col("attempts"),
    _col("not_before"), _col("carried_batches"), Column("cancel_requested", bool),
)  # fmt: skip

JOB_TRANSITIONS = Table(
    "job_transitions", JobTransition,
    _col("seq", insert=False), _bytes("task_id"),
    Column("from_status", lambda v: JobStatus(as_str(v)), _value, field="frm"),
    Column("to_status", lambda v: JobStatus(as_str(v)), _value, field="to"),
    _text("reason"), _opt("height"), _col("time"),
)  # fmt: skip


def _entry(seq: int, debit: str, credit: str, amount: int, ref_kind: str, ref: bytes, block_height: int | None,
           time: int) -> LedgerEntry:  # fmt: skip
    posting = Posting(debit=debit, credit=credit, amount=amount, ref_kind=ref_kind, ref=ref)  # type: ignore[arg-type]
    return LedgerEntry(posting=posting, block_height=block_height, time=time, seq=seq)


LEDGER_ENTRIES = Table(
    "ledger_entries", _entry,
    _col("seq", insert=False), _text("debit"), _text("credit"), _col("amount"), _text("ref_kind"), _bytes("ref"),
    _opt("block_height"), _col("time"),
)  # fmt: skip

PROOF_INCLUSIONS = Table(
    "proof_inclusions", ProofInclusion,
    _bytes("task_id"), _bytes("proof_id"), _bytes("provider_id"), _col("height"), _col("tx_index"),
    _bytes("tx_hash"), _bytes("producer"),
)  # fmt: skip

REFUSED_TXS = Table(
    "refused_txs", RefusedTx,
    _col("height"), _col("tx_index"), _bytes("tx_hash"), _text("kind"), _bytes("sender"), _text("field"),
    _text("reason"),
)  # fmt: skip

CANCEL_REQUESTS = Table(
    "cancel_requests", CancelRequest,
    _col("height"), _col("tx_index"), _bytes("tx_hash"), _bytes("task_id"), _bytes("sender"),
    Column("outcome", lambda v: CancelOutcome(as_str(v)), _value),
)  # fmt: skip

CLAIMS = Table("claims", Claim, _bytes("claim_id"), _bytes("provider_id"), _col("amount"), _col("time"))

PROVIDERS = Table(
    "providers", Provider,
    _bytes("provider_id"), _bytes("public_key"), Column("status", lambda v: ProviderStatus(as_str(v)), _value),
    _col("registered_at"), Column("kinds", texts_of, texts), Column("models", texts_of, texts),
    Column("devices", texts_of, texts), Column("regions", texts_of, texts), Column("tee_classes", texts_of, texts),
    _col("max_leases"), _col("bonded"), _col("unbonding"), _col("unbonding_until"), _opt("jailed_until"),
    _opt("last_heartbeat_at"), _col("bucket_tokens_mu"), _col("bucket_at"), _col("strikes"), _col("updated_at"),
    _col("unit_burst_mu"), _col("unit_rate_mu_per_day"),
)  # fmt: skip

DECISIONS = Table(
    "decisions", DecisionRecord,
    _bytes("task_id"), _col("attempt"), _bytes("decision"), Column("winner", as_opt_bytes), _col("time"),
)  # fmt: skip

LEASES = Table(
    "leases", LeaseRecord,
    _bytes("lease_id"), _bytes("task_id"), _bytes("provider_id"), _col("attempt"), _col("granted_at"),
    _col("expires_at"), Column("status", lambda v: LeaseStatus(as_str(v)), _value), _col("epoch"), _opt("ended_at"),
    _bytes("grant_sig"),
)  # fmt: skip

PROOFS = Table(
    "proofs", ProofRecord,
    _bytes("proof_id"), _bytes("task_id"), _bytes("lease_id"), _bytes("provider_id"), _text("kind"),
    _bytes("envelope"), _col("received_at"), _col("latency_ms"), _text("verdict"), _text("message"),
    _bytes("acceptance"), _bytes("acceptance_sig"), _col("units_mu"), _bytes("output_digest"),
    Column("qos", _qos_of, _qos),
)  # fmt: skip

RESULTS = Table(
    "results", ResultRecord,
    _bytes("task_id"), _bytes("proof_id"), _text("kind"), _bytes("output_digest"), _col("units_mu"),
    Column("qos", _qos_of, _qos), _col("block_height", field="height"), _col("tx_index"), _bytes("miner_id"),
    _bytes("provider_id"),
)  # fmt: skip

BATCHES = Table(
    "batches", BatchRecord,
    _col("epoch"), _col("finalized_height"), _bytes("params_hash"), _col("price_bps"), _col("next_price_bps"),
    _bytes("root"), _bytes("batch"), _col("payouts"), _col("carried"), _col("reward"), _col("units_mu"),
    _col("treasury_before"), _bytes("trap_seed"), _col("time"),
)  # fmt: skip

# The Payout fields in declaration order; `position` (admission order) is written beside them, never read back.
PAYOUTS = Table(
    "payouts", Payout,
    _bytes("payout_id"), _col("epoch"), _bytes("task_id"), _bytes("provider_id"), _bytes("miner_id"),
    _bytes("proof_id"), _col("units_mu"), _col("base_rate"), _col("price_bps"), _col("reward"), _col("provider"),
    _col("miner"), _col("fund"), _col("charged"), _bytes("params_hash"),
)  # fmt: skip

SLASHES = Table(
    "slashes", SlashRecord,
    _bytes("evidence_hash"), _bytes("provider_id"), _text("reason"), _bytes("subject"), _bytes("task_id"),
    _col("amount"), _bytes("evidence"), _col("time"), _opt("jailed_until"),
)  # fmt: skip

EVENTS = Table("events", Event, _col("seq"), _text("topic"), _bytes("data"), _col("time"))

TRAP_SEEDS = Table(
    "trap_seeds", TrapSeedRecord,
    _col("epoch"), _bytes("commitment"), _col("committed_at"), _col("committed_height"), _bytes("seed"),
    _opt("revealed_at"),
)  # fmt: skip

TRAPS = Table(
    "traps", TrapRecord,
    _bytes("caller"), _col("n"), _col("epoch"), _text("model"), _bytes("prompt"), _col("max_tokens"),
    _col("funded"), _col("created_at"), _bytes("task_id"), _bytes("log_hash"), _bytes("answer_digest"),
    _opt("revealed_at"),
)  # fmt: skip

GRANTS = Table(
    "grants", GrantRecord,
    _bytes("caller"), _col("m"), _col("epoch"), _bytes("requester"), _bytes("request_hash"), _text("model"),
    _bytes("body"), _col("funded"), _col("created_at"), _opt("sent_at"), _bytes("task_id"), _col("reclaimed"),
    _opt("closed_at"),
)  # fmt: skip

IDEMPOTENCY_KEYS = Table("idempotency_keys", IdempotencyRecord, _bytes("key"), _bytes("fingerprint"), _bytes("result"))

PROVIDER_TRANSITIONS = Table(
    "provider_transitions", ProviderMove,
    _col("seq", insert=False), _bytes("provider_id"),
    Column("from_status", lambda v: None if v is None else ProviderStatus(as_str(v)), _opt_value, field="frm"),
    Column("to_status", lambda v: ProviderStatus(as_str(v)), _value, field="to"), _text("reason"), _col("time"),
)  # fmt: skip

RPC_NONCES = Table("rpc_nonces", NonceRecord, _bytes("provider_id"), _bytes("nonce"), _col("expires_at"))

VENDOR_ROOTS = Table(
    "vendor_roots", RootRecord,
    _text("vendor"), _text("name"), _col("version"), _bytes("der"), _bytes("sha256"), _col("activation_height"),
    _opt("expiry_height"), _col("added_height"), _col("added_at"),
)  # fmt: skip

ATTESTATION_POLICIES = Table(
    "attestation_policies", PolicyRecord,
    _text("kind"), _col("version"), _col("activation_height"), _bytes("policy"), _col("added_height"),
    _col("added_at"),
)  # fmt: skip

TRUST_TRANSITIONS = Table(
    "trust_transitions", TrustChange,
    _col("seq", insert=False), _text("what"), _text("action"), _text("subject"), _text("detail"), _col("height"),
    _col("time"),
)  # fmt: skip

OPERATOR_CHANGES = Table(
    "operator_changes", OperatorChange,
    _col("height"), _col("tx_index"), _bytes("tx_hash"), _bytes("sender"), _text("op"), _bytes("subject"),
    _bytes("before"), _bytes("after"), _col("effective_epoch"), _col("time"),
)  # fmt: skip

TABLES: dict[str, Table[Any]] = {
    t.name: t
    for t in (
        BLOCKS, JOBS, JOB_TRANSITIONS, LEDGER_ENTRIES, PROOF_INCLUSIONS, REFUSED_TXS, CANCEL_REQUESTS, CLAIMS,
        PROVIDERS, DECISIONS, LEASES, PROOFS, RESULTS, BATCHES, PAYOUTS, SLASHES, EVENTS, TRAP_SEEDS, TRAPS,
        IDEMPOTENCY_KEYS, PROVIDER_TRANSITIONS, RPC_NONCES, VENDOR_ROOTS, ATTESTATION_POLICIES, TRUST_TRANSITIONS,
        OPERATOR_CHANGES, GRANTS,
    )
}  # fmt: skip


def expand_columns(sql: str) -> str:
    """`{table}`, `{table:alias}` and `{table:insert}` in a query file → the table's column list."""

    def one(name: str, how: str) -> str:
        table = TABLES.get(name)
        if table is None:
            raise SchemaError(f"{{{name}}} names no table of aicf.store.tables")
        return table.insert_columns() if how == "insert" else table.select(how)

    return _BRACES.sub(lambda m: one(m[1], m[2] or ""), sql)
