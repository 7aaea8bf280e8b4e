"""Every failure the core reports, under one base class.

AicfError
 ├── EncodingError            a value the canonical encoding does not admit (float, None, non-text key)
 ├── DecodingError            outside bytes that are not canonical CBOR of the admitted kinds (tags, floats, …)
 ├── ParamsError              a params key that is unknown, ill-typed or out of range
 ├── RequestError             a request that SPEC §2 rejects (field, reason)
 ├── IllegalTransitionError   a job status move that is not a row of SPEC §4's table
 ├── AssignmentError          no candidate could be drawn (no stake)
 ├── SettlementInputError     an inconsistent settlement input (duplicate task, negative amount)
 └── EscrowShortfallError     a settled charge above what the task's escrow holds
"""


class AicfError(Exception):
    """A failure aicf expects and reports to the caller. Anything else escaping a use-case is a bug."""


class EncodingError(AicfError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot encode {path}: {reason}")
        self.path, self.reason = path, reason


class DecodingError(AicfError):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"cannot decode {where}: {reason}")
        self.where, self.reason = where, reason


class ParamsError(AicfError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"params: {key}: {reason}")
        self.key, self.reason = key, reason


class RequestError(AicfError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"request rejected: {field}: {reason}")
        self.field, self.reason = field, reason


class IllegalTransitionError(AicfError):
    def __init__(self, task_id: bytes, status: str, to: str) -> None:
        super().__init__(f"task 0x{task_id.hex()}: {status} -> {to} is not an allowed move")
        self.task_id, self.status, self.to = task_id, status, to


class AssignmentError(AicfError):
    def __init__(self, task_id: bytes, reason: str) -> None:
        super().__init__(f"task 0x{task_id.hex()}: no assignment: {reason}")
        self.task_id, self.reason = task_id, reason


class SettlementInputError(AicfError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"settlement input: {reason}")
        self.reason = reason


class EscrowShortfallError(AicfError):
    def __init__(self, task_id: bytes, charged: int, held: int) -> None:
        super().__init__(f"task 0x{task_id.hex()}: charged {charged} exceeds its escrow of {held}")
        self.task_id, self.charged, self.held = task_id, charged, held
