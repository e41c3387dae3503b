"""The one number format of every page (`analysis.digits`), and the tag that ties a printed number to its
`summary.json` key."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from analysis.digits import APPROXIMATE, RARE, RESOLUTION, format_number, stable_digits  # noqa: F401  (the pages' names)


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


def tag(key: str, value, digits: int | None = 3, mcse: float | None = None, scale: int | None = None) -> Markup:
    """The printed number inside `<span data-key="key">`: a test reads every one back from summary.json.
    `scale`: print value × scale, rounded to a whole number ("87 of 100"), marked `data-scale`."""
    if scale is not None:
        return Markup(f'<span data-key="{escape(key)}" data-scale="{scale}">{per(value, scale, mcse)}</span>')
    return Markup(f'<span data-key="{escape(key)}">{escape(format_number(value, digits, mcse))}</span>')


def per(value: float, scale: int, mcse: float | None = None) -> str:
    """value × scale as a whole number ("87" of 100); from draws, to the nearest 5 or 10 when a unit is
    finer than `RESOLUTION` MCSE."""
    value = float(value)
    step = next((s for s in (1, 5, 10) if not mcse or s >= RESOLUTION * mcse * scale), 10)
    return str(int(math.floor(scale * value / step + 0.5)) * step)


def lookup(document: dict, key: str):
    """The value at a dotted key of a summary document (list items by index)."""
    value = document
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value
