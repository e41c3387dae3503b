"""How many digits a printed number may show: the one rule of the pages and the figures (standard library
only, so that the figure workers, which import no code of the pages, use it too).

A number from quadrature or a closed form is printed at the digits asked for. A number from draws is
printed only to the decimals whose last unit is at least `RESOLUTION` Monte Carlo standard errors (down to
one decimal, then "≈" and the value rounded to the order of 2 MCSE). The number of digits then follows from the
Monte Carlo error alone, not from where the value happens to fall, and another seed changes the printed value
only when it lies within a few standard errors of a rounding boundary (for a value anywhere in the unit, with
probability about 1.6 MCSE / unit ≤ 16%, and far less for most). A small proportion gets at least two
significant digits, so that rare events stay readable ("0.012", not "0.01").
"""

from __future__ import annotations

import math

RESOLUTION = 10.0
"""A number from draws is printed to a unit of at least this many Monte Carlo standard errors."""
APPROXIMATE = 2.0
"""Below one decimal: "≈" and the value to the order of this many MCSE."""


RARE = 0.1
"""Below this a proportion gets two significant digits ("0.012", not "0.01")."""


def _plain(value: float, digits: int) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text  # a value that rounds to zero has no sign


def stable_digits(mcse: float | None, digits: int) -> int | None:
    """The most decimals (at most `digits`, at least one) whose last unit is at least `RESOLUTION` MCSE;
    None when even one decimal is finer than that."""
    if mcse is None or not math.isfinite(mcse) or mcse == 0:
        return digits
    for d in range(digits, min(digits, 1) - 1, -1):
        if 10.0 ** -d >= RESOLUTION * mcse:
            return d
    return None


def format_number(value, digits: int | None = 3, mcse: float | None = None) -> str:
    """`value` for a page: "—" for None, yes/no for booleans, integers as they are, floats at `digits`
    decimals (fewer when Monte Carlo error says so, more for a small proportion); `digits=None`: a quantity
    as given (a dose of 12.5 mg, not 12.500)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if digits is None:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
    if 0 < abs(value) < RARE:
        digits = max(digits, 1 - math.floor(math.log10(abs(value))))
    stable = stable_digits(mcse, digits)
    if stable is None:
        order = 10 ** math.ceil(math.log10(APPROXIMATE * mcse))
        return "≈" + _plain(round(value / order) * order, max(0, -math.floor(math.log10(order))))
    return _plain(value, stable)
