"""Units of the core as distinct types, so mypy catches milli-units passed where µANM is expected (SPEC §3)."""

from typing import NewType

MicroAnm = NewType("MicroAnm", int)  # 1 ANM = 1_000_000 µANM
MilliUnits = NewType("MilliUnits", int)  # 1 unit = 1_000 mu
Milli = NewType("Milli", int)  # a weight in thousandths
Bps = NewType("Bps", int)  # basis points, 10_000 = 1.0
Timestamp = NewType("Timestamp", int)  # integer unix seconds
Height = NewType("Height", int)

BPS = 10_000
MAX_AMOUNT = 2**63  # every stored amount and every request integer is < 2^63 (SPEC §1)
