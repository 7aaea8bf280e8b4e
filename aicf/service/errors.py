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


class InvalidPolicyError(AicfError):
    """An attestation policy the registry refuses: nothing was stored. `field` names the offending input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"attestation policy refused: {field}: {reason}")
        self.field, self.reason = field, reason
