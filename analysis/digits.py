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


def format_probability(value, digits: int = 2, mcse: float | None = None) -> str:
    """A probability as `format_number` prints it, except where its Monte Carlo digits round an estimate that
    lies strictly between 0 and 1 to 0 or to 1: then the bound the printed unit allows ("> 0.95", "< 0.05"),
    so that the page never shows a certainty the draws do not."""
    text = format_number(value, digits, mcse)
    if value is None or not mcse:
        return text
    decimals = len(text.split(".")[1]) if "." in text else 0
    shown, unit = float(text.lstrip("≈").replace(",", "")), 10.0 ** -decimals
    if shown >= 1 and value < 1:
        return f"> {1 - unit / 2:.{decimals + 1}f}"
    if shown <= 0 and value > 0:
        return f"< {unit / 2:.{decimals + 1}f}"
    return text


def relation(printed: str) -> str:
    """What goes between a quantity's name and its printed value: "= " before a number ("= 0.98"), nothing
    before a bound ("> 0.95")."""
    return "" if printed[:1] in "<>" else "= "


def shared_digits(values, mcses, digits: int) -> int | None:
    """One number of decimals for numbers printed together (an estimate and its interval): the fewest any of
    them can keep under its Monte Carlo error; None when one is small (printed with its own digits) or not
    stable even at one decimal."""
    shown = []
    for value, mcse in zip(values, mcses):
        if value is None or 0 < abs(float(value)) < RARE:
            return None
        d = stable_digits(mcse, digits)
        if d is None:
            return None
        shown.append(d)
    return min(shown) if shown else None


def estimate_formats(block: dict, digits: int = 2) -> tuple[tuple[float, int, float | None], ...]:
    """How to print an estimate's mean and 95% bounds (a `summary.json` block) together: (value, digits, mcse)
    for each, at one shared number of decimals when Monte Carlo error allows it (`shared_digits`), else each
    at the digits its own error leaves."""
    mcse = block.get("mcse") or {}
    values = (block["mean"], *block["ci95"])
    errors = (mcse.get("mean"), mcse.get("lo"), mcse.get("hi"))
    common = shared_digits(values, errors, digits)
    if common is not None:
        return tuple((value, common, None) for value in values)
    return tuple((value, digits, error) for value, error in zip(values, errors))
