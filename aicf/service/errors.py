"""Failures of the coordinator's use-cases, each with the fields a caller (and the RPC error table) needs."""

from aicf.core.errors import AicfError


class UnknownProviderError(AicfError):
    def __init__(self, provider_id: bytes) -> None:
        super().__init__(f"provider 0x{provider_id.hex()} is not registered")
        self.provider_id = provider_id


class InvalidRegistrationError(AicfError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"registration refused: {field}: {reason}")
        self.field, self.reason = field, reason


class StakeError(AicfError):
    """A stake deposit, withdrawal or claim that the rules refuse (amount, balance, status)."""


class ProviderBannedError(AicfError):
    """A BANNED provider asked for anything but a claim (its stake unbonds and is released to its account)."""

    def __init__(self, provider_id: bytes, what: str) -> None:
        super().__init__(f"provider 0x{provider_id.hex()} is banned: no {what}; it may only claim its balance")
        self.provider_id, self.what = provider_id, what


class LeaseNotFoundError(AicfError):
    def __init__(self, lease_id: bytes, why: str) -> None:
        super().__init__(f"lease 0x{lease_id.hex()} {why}")
        self.lease_id, self.why = lease_id, why


class NotLeaseHolderError(AicfError):
    def __init__(self, lease_id: bytes, provider_id: bytes) -> None:
        super().__init__(f"lease 0x{lease_id.hex()} is not held by provider 0x{provider_id.hex()}")
        self.lease_id, self.provider_id = lease_id, provider_id


class NotFoundError(AicfError):
    """A read for something that does not exist (a job, a result, an epoch without a batch yet)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class InvalidRootError(AicfError):
    """A vendor root the registry refuses (SPEC §8): nothing was stored. `field` names the offending input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"vendor root refused: {field}: {reason}")
        self.field, self.reason = field, reason


class InvalidDeviceKeyError(InvalidRootError):
    """A quantum device key the registry refuses to pin (issue 14): nothing was stored."""

    def __init__(self, field: str, reason: str) -> None:
        AicfError.__init__(self, f"device key refused: {field}: {reason}")
        self.field, self.reason = field, reason


class InvalidPolicyError(AicfError):
    """An attestation policy the registry refuses: nothing was stored. `field` names the offending input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"attestation policy refused: {field}: {reason}")
        self.field, self.reason = field, reason


class ProviderChangedError(AicfError):
    """The provider's row changed between the use-case's read and its guarded write (another replica): the
    use-case rolled back; retrying it reads the new row."""

    def __init__(self, provider_id: bytes) -> None:
        super().__init__(f"provider 0x{provider_id.hex()} changed concurrently; retry")
        self.provider_id = provider_id


class JobMovedError(AicfError):
    """The job left the status a lease's end expected while the lease ended (another writer moved it)."""

    def __init__(self, task_id: bytes) -> None:
        super().__init__(f"task 0x{task_id.hex()} moved while its lease ended")
        self.task_id = task_id


class SettlementStateError(AicfError):
    """Settlement found the store inconsistent with the chain (a result without its job, a second batch for an
    epoch): nothing of the batch was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingDecisionPoolError(AicfError, LookupError):
    """A stored matcher decision names a candidate pool the store does not hold (a damaged store)."""

    def __init__(self, task_id: bytes, pool_id: bytes) -> None:
        super().__init__(f"the decision of job 0x{task_id.hex()} names pool 0x{pool_id.hex()}, not stored")
        self.task_id, self.pool_id = task_id, pool_id


class NonceReusedError(AicfError):
    """A signed call's nonce was recorded already (a replay, or the same call on two replicas at once): the
    use-case it ran rolled back. The transport answers it as a replayed nonce."""

    def __init__(self, provider_id: bytes, nonce: bytes) -> None:
        super().__init__(f"nonce 0x{nonce.hex()} of provider 0x{provider_id.hex()} was already used")
        self.provider_id, self.nonce = provider_id, nonce


class ProofGroupError(AicfError):
    """A group of proofs (`submit_proofs`) that is empty or larger than MAX_PROOF_GROUP: nothing was checked."""

    def __init__(self, size: int, most: int) -> None:
        super().__init__(f"a proof group holds 1 to {most} envelopes, got {size}")
        self.size, self.most = size, most
