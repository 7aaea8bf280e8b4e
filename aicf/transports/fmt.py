"""How numbers read for a person, the same in the CLI and on the dashboard (static/app.js `aicfFormat`).

Integer maths only, so a value prints exactly (no float rounding): work in units with three decimals
(`119.303 units` for 119,303 mu), money in ANM with up to six decimals and trailing zeros dropped (`0.506 ANM`
for 506,000 µANM), shares in percent with two decimals (`92.50%` for 9,250 bps). tests/transports/
format_vectors.json holds the cases both implementations are tested against.
"""

from typing import Final, TypeGuard

MU_PER_UNIT: Final = 1_000
MICRO_PER_ANM: Final = 1_000_000


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _split(value: int, scale: int, digits: int) -> tuple[str, str, str]:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), scale)
    return sign, f"{whole:,}", str(frac).rjust(digits, "0")


def units(mu: object) -> str:
    """Milli-units as units with three decimals: 119303 -> '119.303 units'; '-' when not an integer."""
    if not _is_int(mu):
        return "-"
    sign, whole, frac = _split(mu, MU_PER_UNIT, 3)
    return f"{sign}{whole}.{frac} units"


def anm(micro: object) -> str:
    """µANM as ANM, up to six decimals, trailing zeros dropped: 506000 -> '0.506 ANM', 10**10 -> '10,000 ANM'."""
    if not _is_int(micro):
        return "-"
    sign, whole, frac = _split(micro, MICRO_PER_ANM, 6)
    frac = frac.rstrip("0")
    return f"{sign}{whole}{'.' + frac if frac else ''} ANM"


def pct(bps: object) -> str:
    """Basis points as a percentage with two decimals: 9250 -> '92.50%'."""
    if not _is_int(bps):
        return "-"
    sign, whole, frac = _split(bps, 100, 2)
    return f"{sign}{whole}.{frac}%"


def count(value: object) -> str:
    """An integer with thousands separators: 5000 -> '5,000'."""
    return f"{value:,}" if _is_int(value) else "-"
