"""The house style of the report's figures: one rc dict, the colours, the width, and the `styled` decorator.

Every figure is drawn inside `styled` (the rc settings apply while the figure is built, the global rcParams
stay untouched), about `WIDTH` inches wide so that it reads at an 800 px embed (1125 px at 150 dpi, shown
at about 0.7), with constrained layout (one layout pass when it is saved).
"""

from __future__ import annotations

import functools
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis.digits import estimate_formats, format_number  # noqa: E402

WIDTH = 7.5
"""inches: 1125 px at 150 dpi, shown at about 0.7 of that in an 800 px page."""
HALF_A4 = 4.0
"""inches: a figure that fits half the width of an A4 page (210 mm / 2 = 4.13 in)."""
DPI = 150

STYLE = {
    "font.size": 9, "axes.titlesize": 9.5, "axes.titleweight": "normal", "axes.titlelocation": "left",
    "axes.labelsize": 9, "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "legend.fontsize": 8.5,
    "legend.title_fontsize": 8.5, "figure.titlesize": 10.5, "figure.titleweight": "normal", "figure.dpi": 100,
    "figure.constrained_layout.use": True, "figure.constrained_layout.h_pad": 0.06,
    "figure.constrained_layout.w_pad": 0.06, "legend.frameon": False, "axes.spines.top": False,
    "axes.spines.right": False, "lines.linewidth": 1.3, "svg.fonttype": "none",
}
"""The report's rc settings (font sizes, left titles, no top/right spines, constrained layout)."""

COLOURS = {"prior": "#7f7f7f", "map": "#1f77b4", "likelihood": "#2ca02c", "posterior": "#d62728",
           "joint": "#9467bd"}
CHAIN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
CRUDE_COLOUR = "#2ca02c"
ALTERNATIVE_COLOUR = "#e6550d"
FAILED_COLOUR = "#d62728"
BAND_COLOUR = "#dce6f2"
GREY = "#8a8a8a"
GROUP_COLOURS = {
    "primary": "#1f77b4", "likelihood family": "#17becf", "outcome": "#9467bd", "prior": "#ff7f0e",
    "evidence": "#2ca02c", "publication bias": "#d62728", "small-study effects": "#8c564b",
    "naloxone borrowing": "#e377c2", "target arm borrowing": "#e377c2", "leave one out": "#7f7f7f",
    "graded outcomes": "#6b6ecf", "other": "#bcbd22",
}
SPARE_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}
"""Colour-blind-safe palette (Okabe & Ito 2008)."""
SEQUENCE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
"""A colour-blind-safe order for lines of one figure (sizes, design priors, outcomes)."""
OUTCOME_COLOURS = {"any": "#0072B2", "marked": "#009E73", "complete": "#D55E00", "sustained": "#CC79A7"}


def styled(function=None, *, sheet: str | None = None):
    """Draw inside the house rc style (and a matplotlib style `sheet` under it, e.g. ArviZ's
    "arviz-variat"), without touching the global rcParams. Use as ``@styled`` or ``@styled(sheet=...)``."""

    def decorate(draw):
        @functools.wraps(draw)
        def wrapper(*args, **kwargs):
            if sheet is None:
                with plt.rc_context(STYLE):
                    return draw(*args, **kwargs)
            with plt.style.context(sheet), plt.rc_context(STYLE):
                return draw(*args, **kwargs)

        return wrapper

    return decorate(function) if function is not None else decorate


# --- small helpers shared by the figure modules --------------------------------------------------------


def wrap(text: str, width: int) -> str:
    """`text` broken into lines of at most `width` characters at spaces (a word longer stays whole)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def minus(text: str) -> str:
    """Typographic minus signs in a formatted number."""
    return text.replace("-", "−")


def interval_text(block: dict) -> str:
    """"0.51 (0.28–0.74)" from a `summary.json` estimate, at the digits the pages print it (Monte Carlo error
    included)."""
    mean, lo, hi = (format_number(value, digits, error) for value, digits, error in estimate_formats(block))
    return f"{mean} ({lo}–{hi})"


def legend_below(figure, handles, ncols: int = 2, **kwargs):
    """The legend in a row (or rows) of its own under the panels (constrained layout makes room)."""
    kwargs.setdefault("handlelength", 2.2)
    return figure.legend(handles=handles, loc="outside lower center", ncols=ncols, **kwargs)


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"
