"""The answer for a clinician, from `summary.json`: of 100 patients treated, how many are expected to
respond, without and with publication bias taken into account."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch, Patch  # noqa: E402

from .style import HALF_A4, legend_below, styled  # noqa: E402

RESPONDER = "#0072B2"
"""Okabe-Ito blue: dark in print (about 37% luminance)."""
OTHER = "#DDDDDD"
"""Light grey with a grey outline: about 87% luminance, so the two stay apart in grey print."""
OTHER_EDGE = "#8C8C8C"
COLUMNS = 10


def per_hundred(probability: float) -> int:
    """The expected responders of 100 patients: the probability × 100, rounded half up."""
    return int(math.floor(100.0 * float(probability) + 0.5))


def _person(ax, x: float, y: float, responds: bool, panel: str) -> None:
    """A person glyph in a unit cell centred at (x, y): a round head above a rounded body."""
    face = RESPONDER if responds else OTHER
    edge = RESPONDER if responds else OTHER_EDGE
    kind = "responder" if responds else "other"
    ax.add_patch(Circle((x, y + 0.24), 0.17, facecolor=face, edgecolor=edge, lw=0.5,
                        gid=f"icon:{panel}:{kind}:head"))
    ax.add_patch(FancyBboxPatch((x - 0.27, y - 0.42), 0.54, 0.5, boxstyle="round,pad=0,rounding_size=0.2",
                                facecolor=face, edgecolor=edge, lw=0.5, gid=f"icon:{panel}:{kind}:body"))


@styled
def icon_array(s: dict) -> plt.Figure:
    """Two panels of 100 person icons, "of 100 patients treated": how many are expected to respond (the
    predictive mean for a new report's patients × 100, rounded) if publication were not selective
    (``s["predictive"]["mean"]``) and with the selection strength ω integrated out
    (``s["bias"]["averaged"]["predictive"]["mean"]``), responders filled dark blue from the top left, the
    others light grey: colour-blind safe and apart in grey print; the numbers as text. Sized to fit half
    the width of an A4 page. Without a bias block, the first panel only."""
    answers = [("If publication were\nnot selective", float(s["predictive"]["mean"]), "unadjusted")]
    averaged = ((s.get("bias") or {}).get("averaged") or {}).get("predictive")
    if averaged and averaged.get("mean") is not None:
        answers.append(("Allowing for selective\npublication (ω averaged)", float(averaged["mean"]), "bias_adjusted"))
    drug = str(s.get("drug") or "the drug")
    outcome = str(s.get("outcome") or "response").replace("_", " ")
    figure, axes = plt.subplots(1, len(answers), figsize=(HALF_A4 if len(answers) > 1 else HALF_A4 * 0.6, 3.4),
                                layout="constrained", squeeze=False)
    for ax, (title, probability, panel) in zip(axes[0], answers):
        count = per_hundred(probability)
        for i in range(100):
            row, column = divmod(i, COLUMNS)
            _person(ax, column, -row, i < count, panel)
        ax.set_xlim(-0.55, COLUMNS - 0.45)
        ax.set_ylim(-(100 // COLUMNS) + 0.45, 0.55)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(title, fontsize=8.5, loc="center")
        ax.text(0.5, -0.02, f"{count} of 100 respond", transform=ax.transAxes, ha="center", va="top",
                fontsize=10.5, fontweight="bold", color=RESPONDER, gid=f"count:{panel}")
    figure.suptitle(f"Of 100 patients treated with {drug},\nhow many are expected to show {outcome}",
                    x=0.02, ha="left", fontsize=9.5)
    legend_below(figure, [Patch(facecolor=RESPONDER, edgecolor=RESPONDER, label="responds"),
                          Patch(facecolor=OTHER, edgecolor=OTHER_EDGE, label="does not respond")],
                 ncols=2, fontsize=8, handlelength=1.4)
    return figure
