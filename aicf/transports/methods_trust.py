"""JSON-RPC methods for the registry's vendor roots and attestation policy (SPEC §8; docs/ROOTS.md).

Listing is public (roots are public certificates, and a provider should know the policy it is judged by); adding,
rotating and setting need the operator token. Parse, call `aicf.service.trust`, render: no rules here.
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import Field

from aicf.core.encoding import to_hex
from aicf.core.trust import RootRecord, TrustChange
from aicf.service.trust import PolicySpec, PolicyVersion, RootView, TrustRegistry, device_public_key
from aicf.transports import results
from aicf.transports.rpc import CallContext, RpcMethod
from aicf.transports.schemas import Hex, NoParams, Uint, WireModel

Json = Any
Name = Annotated[str, Field(min_length=1, max_length=100)]
Kind = Annotated[str, Field(min_length=1, max_length=32)]


class AddRootParams(WireModel):
    vendor: Kind
    name: Name
    der: Hex
    activation_height: Uint
    expiry_height: Uint | None = None
    version: Annotated[int, Field(ge=1, le=2**31)] | None = None


class RotateRootParams(WireModel):
    vendor: Kind
    name: Name
    der: Hex
    activation_height: Uint
    overlap_blocks: Uint
    version: Annotated[int, Field(ge=1, le=2**31)] | None = None


class SnpTcbParams(WireModel):
    bootloader: Annotated[int, Field(ge=0, le=255)]
    tee: Annotated[int, Field(ge=0, le=255)]
    snp: Annotated[int, Field(ge=0, le=255)]
    microcode: Annotated[int, Field(ge=0, le=255)]


class SetPolicyParams(WireModel):
    kind: Kind
    activation_height: Uint
    allow_debug: bool = False
    allowed_measurements: Annotated[tuple[Hex, ...], Field(max_length=1024)] | None = None
    accepted_tcb_statuses: Annotated[tuple[Annotated[str, Field(max_length=64)], ...], Field(max_length=8)] = (
        "UpToDate",
    )
    min_snp_tcb: SnpTcbParams | None = None
    max_vmpl: Annotated[int, Field(ge=0, le=3)] = 3


class PinDeviceKeyParams(WireModel):
    device: Annotated[str, Field(min_length=1, max_length=64)]
    device_class: Annotated[str, Field(min_length=1, max_length=32)]
    public_key: Hex
    activation_height: Uint | None = None


def render_device_key(r: RootRecord) -> Json:
    device_class, _, device = r.name.partition("/")
    return {
        "device": device,
        "device_class": device_class,
        "version": r.version,
        "public_key": to_hex(device_public_key(r)),
        "activation_height": r.activation_height,
        "added_height": r.added_height,
        "added_at": r.added_at,
    }


def render_root(v: RootView) -> Json:
    r = v.record
    return {
        "vendor": r.vendor,
        "name": r.name,
        "version": r.version,
        "sha256": to_hex(r.sha256),
        "activation_height": r.activation_height,
        "expiry_height": r.expiry_height,
        "in_force_next_block": v.in_force_next_block,
        "not_after": v.not_after,
        "added_height": r.added_height,
        "added_at": r.added_at,
        "der": to_hex(r.der),
    }


def render_record(r: RootRecord) -> Json:
    return {"vendor": r.vendor, "name": r.name, "version": r.version, "sha256": to_hex(r.sha256),
            "activation_height": r.activation_height, "expiry_height": r.expiry_height}  # fmt: skip


def render_policy(v: PolicyVersion) -> Json:
    spec = v.spec
    tcb = spec.min_snp_tcb
    return {
        "kind": v.record.kind,
        "version": v.record.version,
        "activation_height": v.record.activation_height,
        "allow_debug": spec.allow_debug,
        "allowed_measurements": None
        if spec.allowed_measurements is None
        else [to_hex(m) for m in spec.allowed_measurements],
        "accepted_tcb_statuses": list(spec.accepted_tcb_statuses),
        "min_snp_tcb": None
        if tcb is None
        else {"bootloader": tcb[0], "tee": tcb[1], "snp": tcb[2], "microcode": tcb[3]},
        "max_vmpl": spec.max_vmpl,
        "added_height": v.record.added_height,
        "added_at": v.record.added_at,
    }


def render_change(c: TrustChange) -> Json:
    return {"seq": c.seq, "what": c.what, "action": c.action, "subject": c.subject, "detail": c.detail,
            "height": c.height, "time": c.time}  # fmt: skip


RESULTS: dict[str, Any] = {"aicf.listRoots": results.RootListOut, "aicf.addRoot": results.RootRecordOut,
                           "aicf.rotateRoot": results.RotationOut, "aicf.listPolicies": results.PolicyListOut,
                           "aicf.setPolicy": results.PolicySetOut, "aicf.pinDeviceKey": results.DeviceKeyOut,
                           "aicf.listDeviceKeys": results.DeviceKeyListOut}  # fmt: skip


def trust_methods(trust: TrustRegistry, device_classes: Callable[[], Sequence[str]] = tuple) -> list[RpcMethod[Any]]:
    """The registry's methods; `device_classes()`: the quantum device classes the params in force have thresholds
    for (an on-chain params change may add one)."""

    def list_roots(_: NoParams, __: CallContext) -> Json:
        return {"items": [render_root(v) for v in trust.root_views()],
                "changes": [render_change(c) for c in trust.changes()]}  # fmt: skip

    def add_root(p: AddRootParams, _: CallContext) -> Json:
        return render_record(
            trust.add_root(
                vendor=p.vendor,
                name=p.name,
                der=p.der,
                activation_height=p.activation_height,
                expiry_height=p.expiry_height,
                version=p.version,
            )
        )

    def rotate_root(p: RotateRootParams, _: CallContext) -> Json:
        rotation = trust.rotate_root(vendor=p.vendor, name=p.name, der=p.der, activation_height=p.activation_height,
                                     overlap_blocks=p.overlap_blocks, version=p.version)  # fmt: skip
        return {"new": render_record(rotation.new), "retired": [render_record(r) for r in rotation.retired]}

    def list_policies(_: NoParams, __: CallContext) -> Json:
        return {"items": [render_policy(v) for v in trust.policies()]}

    def set_policy(p: SetPolicyParams, _: CallContext) -> Json:
        tcb = p.min_snp_tcb
        spec = PolicySpec(
            allow_debug=p.allow_debug,
            allowed_measurements=p.allowed_measurements,
            accepted_tcb_statuses=p.accepted_tcb_statuses,
            min_snp_tcb=None if tcb is None else (tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode),
            max_vmpl=p.max_vmpl,
        )
        record = trust.set_policy(kind=p.kind, activation_height=p.activation_height, policy=spec)
        return {"kind": record.kind, "version": record.version, "activation_height": record.activation_height}

    def pin_device_key(p: PinDeviceKeyParams, _: CallContext) -> Json:
        record = trust.pin_device(device=p.device, device_class=p.device_class, public_key=p.public_key,
                                  classes=device_classes(), activation_height=p.activation_height)  # fmt: skip
        return render_device_key(record)

    def list_device_keys(_: NoParams, __: CallContext) -> Json:
        return {"items": [render_device_key(r) for r in trust.device_keys()]}

    def m(name: str, model: type[Any], fn: Any, access: str, summary: str) -> RpcMethod[Any]:
        return RpcMethod(name=name, params_model=model, handler=fn, access=access, summary=summary,  # type: ignore[arg-type]
                         result_type=RESULTS[name])  # fmt: skip

    return [
        m("aicf.listRoots", NoParams, list_roots, "read", "Pinned vendor root versions and the trust change log"),
        m("aicf.addRoot", AddRootParams, add_root, "operator", "Pin a vendor root version from an activation height"),
        m(
            "aicf.rotateRoot",
            RotateRootParams,
            rotate_root,
            "operator",
            "Pin a new root version; older versions expire overlap_blocks after it activates",
        ),
        m("aicf.listPolicies", NoParams, list_policies, "read", "Attestation policy versions per evidence kind"),
        m(
            "aicf.setPolicy",
            SetPolicyParams,
            set_policy,
            "operator",
            "Set the next attestation policy version of an evidence kind from an activation height",
        ),
        m(
            "aicf.pinDeviceKey",
            PinDeviceKeyParams,
            pin_device_key,
            "operator",
            "Pin a quantum device's Ed25519 key and device class; its proofs' cert_chain is checked against it",
        ),
        m("aicf.listDeviceKeys", NoParams, list_device_keys, "read", "Pinned quantum device keys, every version"),
    ]
