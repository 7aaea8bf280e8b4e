"""Aicf jobs on anvil: enqueue with escrow by allowance, payload caps, cancel, proof inclusion (first wins),
readResult once final, and the example consumer contract. Every refused call names its reason and changes nothing."""

from typing import Any

from web3 import Web3
from web3.logs import DISCARD

from chain.evm_support import ANM, Stack, mine, revert_of, send

KIND_AI, KIND_QUANTUM = 1, 2
SPEC_TASK = b"\x51" * 32
PROOF = b"\x52" * 32
PROVIDER = b"\x53" * 32
OUTPUT = b"\x54" * 32
DATA = (b"\xe0" * 40, b"\xac" * 30, b"\x5a" * 64)  # envelope, acc, acc_sig: calldata only (docs/EVM.md)
MAX_ENVELOPE = 1024 * 1024 + 4096
CIRCUIT = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nh q[0];\nmeasure q[0] -> c[0];\n'


def ai_args(escrow: int = 5 * ANM, prompt: bytes = b"hello", **over: Any) -> tuple[Any, ...]:
    fields = {"model": "llama3-8b", "prompt": prompt, "max_tokens": 64, "max_runtime_ms": 1000, "fee": 15000}
    fields.update(over)
    return (fields["model"], fields["prompt"], fields["max_tokens"], fields["max_runtime_ms"], fields["fee"], 0, escrow)


def enqueue_ai(stack: Stack, escrow: int = 5 * ANM) -> bytes:
    receipt = send(stack.aicf.functions.aiEnqueue(*ai_args(escrow)), stack.roles.requester)
    (event,) = stack.aicf.events.AiEnqueued().process_receipt(receipt, errors=DISCARD)
    return bytes(event["args"]["taskId"])


def snapshot(stack: Stack) -> tuple[int, int, int, int]:
    aicf = stack.aicf.functions
    return (
        stack.balance(stack.roles.requester),
        stack.balance(stack.aicf.address),
        aicf.escrowLocked().call(),
        aicf.taskNonce().call(),
    )


def test_ai_enqueue_takes_the_escrow_and_logs_what_the_coordinator_needs(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    receipt = send(stack.aicf.functions.aiEnqueue(*ai_args(4 * ANM)), stack.roles.requester)
    (event,) = stack.aicf.events.AiEnqueued().process_receipt(receipt, errors=DISCARD)
    args = event["args"]
    assert (args["caller"], args["model"], args["prompt"], args["maxTokens"]) == (
        stack.roles.requester,
        "llama3-8b",
        b"hello",
        64,
    )
    assert (args["maxRuntimeMs"], args["feePerUnit"], args["tier"], args["escrow"]) == (1000, 15000, 0, 4 * ANM)
    assert stack.balance(stack.roles.requester) == 6 * ANM
    assert stack.balance(stack.aicf.address) == 4 * ANM
    assert stack.aicf.functions.escrowLocked().call() == 4 * ANM
    caller, kind, cancel_requested, escrow = stack.aicf.functions.tasks(args["taskId"]).call()
    assert (caller, kind, cancel_requested, escrow) == (stack.roles.requester, KIND_AI, False, 4 * ANM)


def test_quantum_enqueue_takes_the_escrow_and_logs_circuit_and_shots(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    receipt = send(stack.aicf.functions.quantumEnqueue(CIRCUIT, 1000, 50000, 2, 3 * ANM), stack.roles.requester)
    (event,) = stack.aicf.events.QuantumEnqueued().process_receipt(receipt, errors=DISCARD)
    args = event["args"]
    assert (args["circuit"], args["shots"], args["feePerUnit"], args["tier"], args["escrow"]) == (
        CIRCUIT,
        1000,
        50000,
        2,
        3 * ANM,
    )
    assert stack.balance(stack.aicf.address) == 3 * ANM
    assert stack.aicf.functions.tasks(args["taskId"]).call()[1] == KIND_QUANTUM


def test_two_enqueues_of_the_same_request_get_distinct_task_ids(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    assert enqueue_ai(stack) != enqueue_ai(stack)


def test_enqueue_with_too_little_allowance_reverts_and_moves_nothing(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM, approve=ANM)
    before = snapshot(stack)
    assert revert_of(stack.aicf.functions.aiEnqueue(*ai_args(2 * ANM)), stack.roles.requester) == (
        "InsufficientAllowance",
        (ANM, 2 * ANM),
    )
    assert snapshot(stack) == before


def test_enqueue_with_too_little_balance_reverts(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, ANM, approve=10 * ANM)
    assert revert_of(stack.aicf.functions.aiEnqueue(*ai_args(2 * ANM)), stack.roles.requester) == (
        "InsufficientBalance",
        (ANM, 2 * ANM),
    )


def test_prompt_over_64_kib_reverts_and_one_at_the_cap_is_taken(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    before = snapshot(stack)
    too_big = ai_args(prompt=b"p" * (64 * 1024 + 1))
    assert revert_of(stack.aicf.functions.aiEnqueue(*too_big), stack.roles.requester) == (
        "PayloadTooLarge",
        ("prompt", 64 * 1024 + 1, 64 * 1024),
    )
    assert snapshot(stack) == before
    send(stack.aicf.functions.aiEnqueue(*ai_args(prompt=b"p" * (64 * 1024))), stack.roles.requester)


def test_circuit_over_256_kib_reverts_and_moves_nothing(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    before = snapshot(stack)
    call = stack.aicf.functions.quantumEnqueue(b"x" * (256 * 1024 + 1), 100, 50000, 0, ANM)
    assert revert_of(call, stack.roles.requester) == ("PayloadTooLarge", ("circuit", 256 * 1024 + 1, 256 * 1024))
    assert snapshot(stack) == before


def test_out_of_range_request_fields_revert_naming_the_field(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    f, who = stack.aicf.functions, stack.roles.requester
    cases = [
        (f.aiEnqueue(*ai_args(max_tokens=32769)), ("max_tokens", 32769, 0, 32768)),
        (f.aiEnqueue(*ai_args(max_runtime_ms=0)), ("max_runtime_ms", 0, 1, 600000)),
        (f.aiEnqueue(*ai_args(max_runtime_ms=600001)), ("max_runtime_ms", 600001, 1, 600000)),
        (f.aiEnqueue(*ai_args(model="")), ("model", 0, 1, 64)),
        (f.aiEnqueue(*ai_args(escrow=0)), ("escrow", 0, 1, 2**63 - 1)),
        (f.aiEnqueue(*ai_args(fee=2**63)), ("fee_per_unit", 2**63, 0, 2**63 - 1)),
        (f.quantumEnqueue(CIRCUIT, 0, 50000, 0, ANM), ("shots", 0, 1, 1000000)),
        (f.quantumEnqueue(CIRCUIT, 1000001, 50000, 0, ANM), ("shots", 1000001, 1, 1000000)),
        (f.quantumEnqueue(CIRCUIT, 10, 50000, 4, ANM), ("tier", 4, 0, 3)),
        (f.quantumEnqueue(b"", 10, 50000, 0, ANM), ("circuit", 0, 1, 256 * 1024)),
    ]
    before = snapshot(stack)
    for call, expected in cases:
        assert revert_of(call, who) == ("FieldOutOfRange", expected)
    assert revert_of(f.aiEnqueue(*ai_args(model="m" * 65)), who) == ("PayloadTooLarge", ("model", 65, 64))
    assert snapshot(stack) == before


def test_cancel_by_the_caller_is_logged_once_and_refused_to_anyone_else(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    task_id = enqueue_ai(stack)
    f = stack.aicf.functions
    assert revert_of(f.cancel(task_id), stack.roles.other) == ("NotTaskCaller", (task_id, stack.roles.other))
    assert revert_of(f.cancel(b"\x01" * 32), stack.roles.requester) == ("UnknownTask", (b"\x01" * 32,))
    receipt = send(f.cancel(task_id), stack.roles.requester)
    (event,) = stack.aicf.events.CancelRequested().process_receipt(receipt, errors=DISCARD)
    assert bytes(event["args"]["taskId"]) == task_id
    assert f.tasks(task_id).call()[2] is True
    assert revert_of(f.cancel(task_id), stack.roles.requester) == ("CancelAlreadyRequested", (task_id,))


def include(stack: Stack, task_id: bytes, proof_id: bytes = PROOF, units_mu: int = 1234) -> dict[str, Any]:
    call = stack.aicf.functions.includeProof(task_id, SPEC_TASK, proof_id, PROVIDER, OUTPUT, units_mu, DATA)
    receipt = send(call, stack.roles.coordinator)
    (event,) = stack.aicf.events.ProofIncluded().process_receipt(receipt, errors=DISCARD)
    return dict(event["args"]) | {"blockNumber": receipt["blockNumber"]}


def test_first_inclusion_wins_and_a_second_one_reverts(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    task_id = enqueue_ai(stack)
    first = include(stack, task_id)
    assert (bytes(first["proofId"]), first["unitsMu"], first["miner"]) == (PROOF, 1234, stack.roles.miner)
    second = stack.aicf.functions.includeProof(task_id, SPEC_TASK, b"\x99" * 32, PROVIDER, OUTPUT, 1, DATA)
    assert revert_of(second, stack.roles.coordinator) == ("TaskAlreadyIncluded", (task_id, PROOF))
    stored = stack.aicf.functions.results(task_id).call()
    assert (bytes(stored[1]), stored[4], stored[5]) == (PROOF, 1234, first["blockNumber"])
    assert revert_of(stack.aicf.functions.cancel(task_id), stack.roles.requester) == (
        "TaskAlreadyIncluded",
        (task_id, PROOF),
    )


def test_inclusion_by_anyone_but_the_coordinator_or_of_an_unknown_task_reverts(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    task_id = enqueue_ai(stack)
    f = stack.aicf.functions
    call = f.includeProof(task_id, SPEC_TASK, PROOF, PROVIDER, OUTPUT, 1, DATA)
    assert revert_of(call, stack.roles.requester) == ("NotCoordinator", (stack.roles.requester,))
    unknown = f.includeProof(b"\x02" * 32, SPEC_TASK, PROOF, PROVIDER, OUTPUT, 1, DATA)
    assert revert_of(unknown, stack.roles.coordinator) == ("UnknownTask", (b"\x02" * 32,))
    too_many = f.includeProof(task_id, SPEC_TASK, PROOF, PROVIDER, OUTPUT, 2**63, DATA)
    assert revert_of(too_many, stack.roles.coordinator) == ("FieldOutOfRange", ("units_mu", 2**63, 0, 2**63 - 1))
    envelope, acc, acc_sig = DATA
    for data, reason in (
        # (an envelope over the cap, 1 MiB + 4 KiB, is past anvil's request size: the adapter's test covers it)
        ((b"", acc, acc_sig), ("FieldOutOfRange", ("envelope", 0, 1, MAX_ENVELOPE))),
        ((envelope, b"\x01" * 257, acc_sig), ("PayloadTooLarge", ("acc", 257, 256))),
        ((envelope, b"", acc_sig), ("FieldOutOfRange", ("acc", 0, 1, 256))),
        ((envelope, acc, acc_sig[:63]), ("FieldOutOfRange", ("acc_sig", 63, 64, 64))),
    ):
        bad = f.includeProof(task_id, SPEC_TASK, PROOF, PROVIDER, OUTPUT, 1, data)
        assert revert_of(bad, stack.roles.coordinator) == reason
    assert f.results(task_id).call()[5] == 0


def test_read_result_is_empty_until_the_inclusion_is_final(stack: Stack) -> None:
    stack.fund_with(stack.roles.requester, 10 * ANM)
    task_id = enqueue_ai(stack)
    read = stack.aicf.functions.readResult(task_id)
    assert read.call()[0] is False
    included = include(stack, task_id)
    depth = stack.deployment.finality_depth
    mine(stack.w3, depth - 1)  # head = inclusion + depth - 1: the inclusion block is not final yet
    ready, _ = read.call()
    assert ready is False
    mine(stack.w3, 1)
    ready, result = read.call()
    assert ready is True
    assert result == (SPEC_TASK, PROOF, PROVIDER, OUTPUT, 1234, included["blockNumber"], KIND_AI)


def test_a_consumer_contract_enqueues_with_its_own_tokens_and_reads_the_final_result(stack: Stack) -> None:
    consumer = stack.consumer
    send(stack.token.functions.mint(consumer.address, 3 * ANM), stack.roles.admin)
    receipt = send(consumer.functions.requestAi("llama3-8b", b"2+2?", 8, 500, 15000, 2 * ANM), stack.roles.other)
    (requested,) = consumer.events.Requested().process_receipt(receipt, errors=DISCARD)
    task_id = bytes(requested["args"]["taskId"])
    assert stack.aicf.functions.tasks(task_id).call()[0] == consumer.address
    assert stack.balance(consumer.address) == ANM
    assert revert_of(consumer.functions.consume(task_id), stack.roles.other) == ("ResultNotReady", (task_id,))
    include(stack, task_id)
    mine(stack.w3, stack.deployment.finality_depth)
    send(consumer.functions.consume(task_id), stack.roles.other)
    assert bytes(consumer.functions.outputDigestOf(task_id).call()) == OUTPUT


def test_the_example_consumer_reads_through_the_interface_only(stack: Stack) -> None:
    """readResult is callable by any contract: the consumer holds only the Aicf address."""
    assert stack.consumer.functions.aicf().call() == Web3.to_checksum_address(stack.aicf.address)
