"""The one number format of every page, and the tag that ties a printed number to its `summary.json` key.

A number from quadrature or a closed form is printed at the digits asked for. A number from draws is
printed only to the digits that ±2 Monte Carlo standard errors cannot change (down to one decimal, then
"≈" and the value rounded to the MCSE's order); a small proportion gets at least two significant digits,
so that rare events stay readable ("0.012", not "0.01").
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

MCSE_MULTIPLE = 2.0


RARE = 0.1
"""Below this a proportion gets two significant digits ("0.012", not "0.01")."""


def _plain(value: float, digits: int) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def stable_digits(value: float, mcse: float | None, digits: int) -> int | None:
    """The most decimals (at most `digits`, at least one) at which value ± 2 MCSE rounds to the same printed
    number; None when even one decimal is not stable."""
    if mcse is None or not math.isfinite(mcse) or mcse == 0:
        return digits
    for d in range(digits, min(digits, 1) - 1, -1):
        if _plain(value - MCSE_MULTIPLE * mcse, d) == _plain(value + MCSE_MULTIPLE * mcse, d):
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
    stable = stable_digits(value, mcse, digits)
    if stable is None:
        order = 10 ** math.ceil(math.log10(MCSE_MULTIPLE * mcse))
        return "≈" + _plain(round(value / order) * order, max(0, -math.floor(math.log10(order))))
    return _plain(value, stable)


def shared_digits(values, mcses, digits: int) -> int | None:
    """One number of decimals for numbers printed together (an estimate and its interval): the fewest any of
    them can keep under its Monte Carlo error; None when one is small (printed with its own digits) or not
    stable even at one decimal."""
    shown = []
    for value, mcse in zip(values, mcses):
        if value is None or 0 < abs(float(value)) < RARE:
            return None
        d = stable_digits(float(value), mcse, digits)
        if d is None:
            return None
        shown.append(d)
    return min(shown) if shown else None


def tag(key: str, value, digits: int | None = 3, mcse: float | None = None, scale: int | None = None) -> Markup:
    """The printed number inside `<span data-key="key">`: a test reads every one back from summary.json.
    `scale`: print value × scale, rounded to a whole number ("87 of 100"), marked `data-scale`."""
    if scale is not None:
        return Markup(f'<span data-key="{escape(key)}" data-scale="{scale}">{per(value, scale, mcse)}</span>')
    return Markup(f'<span data-key="{escape(key)}">{escape(format_number(value, digits, mcse))}</span>')


def per(value: float, scale: int, mcse: float | None = None) -> str:
    """value × scale as a whole number ("87" of 100); to the nearest 5 when ±2 MCSE could change it."""
    def whole(x: float, step: int = 1) -> int:
        return int(math.floor(scale * x / step + 0.5)) * step

    value = float(value)
    if mcse and whole(value - MCSE_MULTIPLE * mcse) != whole(value + MCSE_MULTIPLE * mcse):
        return str(whole(value, 5))
    return str(whole(value))


def lookup(document: dict, key: str):
    """The value at a dotted key of a summary document (list items by index)."""
    value = document
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value
