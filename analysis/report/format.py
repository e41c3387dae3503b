"""The one number format of every page (`analysis.digits`), and the tag that ties a printed number to its
`summary.json` key."""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from analysis.digits import (APPROXIMATE, RARE, RESOLUTION, estimate_formats, format_number,  # noqa: F401
                             format_probability, relation, shared_digits, stable_digits)  # (the pages' names)


def tag(key: str, value, digits: int | None = 3, mcse: float | None = None, scale: int | None = None,
        probability: bool = False) -> Markup:
    """The printed number inside `<span data-key="key">`: a test reads every one back from summary.json.
    `scale`: print value × scale, rounded to a whole number ("87 of 100"), marked `data-scale`; `probability`:
    a probability from draws never prints as 0 or 1 unless it is (`format_probability`)."""
    if scale is not None:
        return Markup(f'<span data-key="{escape(key)}" data-scale="{scale}">{per(value, scale, mcse)}</span>')
    text = format_probability(value, digits, mcse) if probability else format_number(value, digits, mcse)
    return Markup(f'<span data-key="{escape(key)}">{escape(text)}</span>')


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
