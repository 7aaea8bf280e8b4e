"""The compiled contracts (ABI and bytecode) shipped as package data in aicf/chain/contracts/.

`scripts/compile-contracts` writes them from contracts/src/ with the pinned solc; a test recompiles and compares.
"""

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

CONTRACT_NAMES = ("Aicf", "AicfTestToken", "ResultConsumer")


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    name: str
    compiler: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code


def load_artifact(name: str) -> Artifact:
    """The committed build of contract `name`; raises ValueError naming an unknown contract."""
    if name not in CONTRACT_NAMES:
        raise ValueError(f"unknown contract {name!r}: expected one of {', '.join(CONTRACT_NAMES)}")
    doc = json.loads(resources.files("aicf.chain").joinpath("contracts", f"{name}.json").read_text(encoding="utf-8"))
    return Artifact(name=doc["contractName"], compiler=doc["compiler"], abi=doc["abi"], bytecode=doc["bytecode"])
