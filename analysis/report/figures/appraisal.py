"""The appraisal and the search, from `summary.json`: the risk-of-bias traffic-light and summary plot
(robvis style, ``s["risk_of_bias"]``) and the PRISMA 2020 flow diagram (``s["prisma"]``).

Both figures are placed in inches (no layout engine): `save` crops them to their drawn extent."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from .style import WIDTH, styled  # noqa: E402

ANSWERS = ("yes", "partly", "no", "unclear", "not_applicable")
CONCERNS = ("low", "moderate", "high")
CORE_ITEMS = ("q2_exposure", "q3_outcome", "q4_alternative_causes", "q8_reporting")
"""The appraisal's vocabulary and core items (data/appraisal.md; `analysis.inputs.appraisal` holds the same
values, which a test compares: this package does not import the input layer)."""

# robvis colours and symbols: green +, yellow −, red ×, blue ? (no information), grey (not applicable).
GREEN, YELLOW, RED, BLUE, GREY = "#02C100", "#E2DF07", "#BF0000", "#4EA1F7", "#BBBBBB"
ANSWER_STYLE = {  # answer: (colour, symbol, legend label)
    "yes": (GREEN, "+", "yes"),
    "partly": (YELLOW, "−", "partly"),
    "no": (RED, "×", "no"),
    "unclear": (BLUE, "?", "unclear"),
    "not_applicable": (GREY, "", "not applicable"),
}
CONCERN_STYLE = {
    "low": (GREEN, "+", "low"),
    "moderate": (YELLOW, "−", "moderate"),
    "high": (RED, "×", "high"),
}
OUTSIDE_REASON_LABELS = {  # `default_set` values of data/README.md; others are shown as written
    "exclude_duplicate": "duplicate patient",
    "exclude_unverified": "primary source not identified",
    "exclude_no_outcome": "outcome not described",
}
NOT_POOLED_COLOUR = "#777777"


def _style(kind: str, value: str) -> tuple[str, str, str]:
    return (CONCERN_STYLE if kind == "overall" else ANSWER_STYLE).get(value, (GREY, "", str(value)))


def _legend_marker(colour: str, symbol: str, label: str) -> Line2D:
    """A legend entry: the coloured circle, its symbol in the label (a legend cannot overlay text)."""
    return Line2D([], [], marker="o", linestyle="", markersize=9, markerfacecolor=colour,
                  markeredgecolor="#555555", markeredgewidth=0.5, label=f"{symbol or ' '}   {label}")


@styled
def risk_of_bias(rob: dict) -> plt.Figure:
    """Traffic-light plot (reports as rows, the eight items and the overall concern as columns; the reports
    pooled in the primary analysis first, the other appraised reports below a line, their names in grey)
    above the summary plot: per item and overall, the share of the POOLED reports with each answer
    (numbers in the bars: reports), so that it describes the evidence behind the estimate; with the legend
    and the item key.

    Reads ``s["risk_of_bias"]``: reports {id: {overall, item: answer}}, items [{key, number, label, domain}],
    pooled_reports, pooled_overall {concern: count}, pooled_items {item: {answer: count}}."""
    items = list(rob["items"])
    pooled = [r for r in rob.get("pooled_reports") or [] if r in rob["reports"]]
    others = [r for r in rob["reports"] if r not in pooled]
    reports = pooled + others
    columns = [item["key"] for item in items] + ["overall"]
    n_rows, n_cols = len(reports), len(columns)
    # layout in inches: the traffic lights (0.3 in a row) beside the key, the summary bars below
    width, left, cell, row, key_height = WIDTH, 1.75, 0.38, 0.30, 4.0
    lights_height, bars_height = row * n_rows, row * (len(items) + 1)
    top_height = max(lights_height, key_height)
    height = 0.6 + top_height + 0.8 + bars_height + 0.55
    figure = plt.figure(figsize=(width, height), layout="none")

    def axes(x: float, top: float, w: float, h: float):
        return figure.add_axes((x / width, 1 - (top + h) / height, w / width, h / height))

    lights = axes(left, 0.6, cell * n_cols, lights_height)
    key = axes(left + cell * n_cols + 0.2, 0.6, width - left - cell * n_cols - 0.25, key_height)
    bars = axes(left, 0.6 + top_height + 0.8, width - left - 0.2, bars_height)

    # --- traffic lights ---
    for r, report in enumerate(reports):
        y = n_rows - 1 - r
        answers = rob["reports"][report]
        for c, column in enumerate(columns):
            kind = "overall" if column == "overall" else "item"
            colour, symbol, _ = _style(kind, answers.get(column, "not_applicable"))
            lights.scatter(c, y, s=150, color=colour, edgecolor="#555555", linewidth=0.5, zorder=2,
                           gid=f"light:{report}:{column}")
            if symbol:
                lights.text(c, y, symbol, ha="center", va="center", fontsize=10, fontweight="bold",
                            color="black", zorder=3)
    lights.axvline(n_cols - 1.5, color="#888888", lw=0.8)
    if pooled and others:
        lights.axhline(n_rows - len(pooled) - 0.5, color="#444444", lw=0.9, gid="separator:not-pooled")
    lights.set_xlim(-0.6, n_cols - 0.4)
    lights.set_ylim(-0.6, n_rows - 0.4)
    lights.set_yticks(range(n_rows))
    lights.set_yticklabels(list(reversed(reports)), fontsize=8)
    for tick, report in zip(lights.get_yticklabels(), reversed(reports)):
        if report not in pooled:
            tick.set_color(NOT_POOLED_COLOUR)
            tick.set_fontstyle("italic")
    lights.set_xticks(range(n_cols))
    lights.set_xticklabels([f"Q{item['number']}{'*' * (item['key'] in CORE_ITEMS)}" for item in items] + ["Overall"],
                           fontsize=8)
    lights.xaxis.tick_top()
    lights.tick_params(length=0)
    lights.grid(True, color="#eeeeee", lw=0.6, zorder=0)
    for side in ("top", "right", "left", "bottom"):
        lights.spines[side].set_visible(True)
        lights.spines[side].set_color("#bbbbbb")

    # --- the key: items and answers ---
    key.axis("off")
    lines = [("Items (domain)", True)]
    lines += [(f"Q{item['number']}{'*' * (item['key'] in CORE_ITEMS)}  {item['label']} ({item['domain']})", False)
              for item in items]
    lines += [("* core items: the overall concern", False), ("   follows from them (appraisal.md)", False)]
    if others:
        lines += [("below the line, grey: appraised, not in", False), ("   the primary analysis", False)]
    step = 0.19 / key_height  # one line of the key, in axes fraction
    for i, (text, bold) in enumerate(lines):
        key.text(0.04, 1 - step * i, text, fontsize=7.5, fontweight="bold" if bold else "normal",
                 va="top", transform=key.transAxes)
    legend = key.legend(handles=[_legend_marker(*ANSWER_STYLE[a]) for a in ANSWERS], title="Answer",
                        loc="upper left", bbox_to_anchor=(0.0, 1 - step * (len(lines) + 0.5)), fontsize=7.5,
                        title_fontsize=7.5, frameon=False, borderaxespad=0.0, labelspacing=0.45, alignment="left")
    key.add_artist(legend)
    below = legend.get_window_extent(figure.canvas.get_renderer()).transformed(key.transAxes.inverted()).y0
    key.legend(handles=[_legend_marker(*CONCERN_STYLE[c]) for c in CONCERNS], title="Overall concern",
               loc="upper left", bbox_to_anchor=(0.0, below - step * 0.5), fontsize=7.5,
               title_fontsize=7.5, frameon=False, borderaxespad=0.0, labelspacing=0.45, alignment="left")

    # --- summary bars: the pooled reports only ---
    item_counts = rob.get("pooled_items") or {}
    rows = [(f"Q{item['number']} {item['label']}", "item", item_counts.get(item["key"], {})) for item in items]
    rows.append(("Overall concern", "overall", rob.get("pooled_overall") or {}))
    total = max(len(rob.get("pooled_reports") or []), 1)
    for r, (_label, kind, tally) in enumerate(rows):
        y = len(rows) - 1 - r
        start = 0.0
        order = CONCERNS if kind == "overall" else ANSWERS
        for value in [v for v in order if v in tally] + [v for v in tally if v not in order]:
            count = int(tally[value])
            if not count:
                continue
            colour, _, _ = _style(kind, value)
            share = 100.0 * count / total
            bars.barh(y, share, left=start, color=colour, edgecolor="white", linewidth=0.8, height=0.72,
                      gid=f"bar:{kind}:{_label}:{value}")
            if share >= 4:
                bars.text(start + share / 2, y, str(count), ha="center", va="center", fontsize=7,
                          color="white" if colour in (RED, BLUE) else "black")
            start += share
    bars.axhline(0.5, color="#888888", lw=0.8)
    bars.set_yticks(range(len(rows)))
    bars.set_yticklabels([label for label, _, _ in reversed(rows)], fontsize=8)
    bars.set_xlim(0, 100)
    bars.set_ylim(-0.6, len(rows) - 0.4)
    bars.set_xticks(range(0, 101, 25))
    bars.set_xticklabels([f"{t}%" for t in range(0, 101, 25)], fontsize=8)
    bars.set_xlabel(f"share of the {total} pooled reports (numbers in the bars: reports)", fontsize=8)
    bars.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        bars.spines[side].set_visible(False)
    appraised = len(reports)
    lights.set_title(f"Methodological quality of each report (Murad et al. 2018): {appraised} appraised, "
                     f"{len(pooled)} pooled", fontsize=9, loc="left", pad=18)
    bars.set_title(f"Summary: share of the {total} pooled reports per answer", fontsize=9, loc="left")
    return figure


# --- PRISMA 2020 --------------------------------------------------------------------------------------

_FONT = 9.0
_PAD = 0.1  # inches between a box's edge and its text
_GAP = 0.4  # inches between rows of boxes
_PHASE_COLOUR = "#C9DDF2"
_PHASE_FONT = 8.0
_PHASE_REACH = _GAP / 2 - 0.06  # a phase bar reaches this far into the gaps above and below its rows


@styled
def prisma(counts: dict, records_identified: int | None = None, records_screened: int | None = None) -> plt.Figure:
    """The PRISMA 2020 flow diagram: records identified and screened (each "not recorded" unless given: the
    shipped search did not log hits per query), reports assessed for eligibility, excluded on reading
    (side box, with reasons), entered the evidence table, outside the default analysis (side box, with
    reasons), and included in the analysis by drug (reports and patients). An "assessed" of None (no record
    of exclusions) shows as "not recorded".

    Every box is sized to the measured extent of its text, so no text overflows its box; the artists carry
    gids ``box:<name>`` and ``text:<name>`` (names: identified, assessed, excluded, in_table, outside,
    included).

    Reads ``s["prisma"]``: assessed, excluded_on_reading, excluded_reasons, in_table, outside_default,
    outside_reasons, included_reports {drug: n}, included_patients {drug: n}."""
    width, main_x, main_w, side_x, side_w = WIDTH, 0.55, 3.4, 4.35, 3.05
    figure = plt.figure(figsize=(width, 6.0), layout="none")
    ax = figure.add_axes((0, 0, 1, 1))
    ax.axis("off")
    renderer = figure.canvas.get_renderer()

    def n(value) -> str:
        return "not recorded" if value is None else str(value)

    def plural(count: int, word: str) -> str:
        return f"{count} {word}{'s' * (count != 1)}"

    def bullets(lines) -> str:
        return "".join(f"\n• {line}" for line in lines)

    reports, patients = counts["included_reports"], counts["included_patients"]
    by_drug = [f"{drug}: {plural(reports[drug], 'report')}, {plural(patients.get(drug, 0), 'patient')}"
               for drug in reports]
    excluded = sorted((counts.get("excluded_reasons") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    outside = sorted((counts.get("outside_reasons") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    excluded_lines = [f"{reason}: {count}" for reason, count in excluded]
    outside_lines = [f"{OUTSIDE_REASON_LABELS.get(reason, reason.removeprefix('exclude_').replace('_', ' '))}: {count}"
                     for reason, count in outside]
    rows = [  # (phase, (name, text), side box (name, text) or None)
        ("Identification", ("identified", f"Records identified (n = {n(records_identified)})\n"
                                          f"Records screened (n = {n(records_screened)})"), None),
        ("Screening", ("assessed", f"Reports assessed for eligibility\n(n = {n(counts.get('assessed'))})"),
         ("excluded", f"Reports excluded on reading\n(n = {n(counts.get('excluded_on_reading'))})"
                      + bullets(excluded_lines))),
        ("Included", ("in_table", f"Reports entered the evidence table\n(n = {counts['in_table']})"),
         ("outside", f"Outside the default analysis\n(n = {counts['outside_default']})" + bullets(outside_lines))),
        ("Included", ("included", f"Reports included in the analysis\n(n = {plural(sum(reports.values()), 'report')}, "
                                  f"{plural(sum(patients.values()), 'patient')})" + bullets(by_drug)), None),
    ]

    def place(name: str, text: str, box_w: float) -> tuple[plt.Text, float]:
        """The text wrapped to fit the box (measured, wrapped tighter until it fits); its height in inches."""
        chars = max(int((box_w - 2 * _PAD) / (_FONT * 0.5 / 72)), 12)
        while True:
            wrapped = "\n".join(textwrap.fill(line, chars, subsequent_indent="   " if line.startswith("• ") else "")
                                for line in text.split("\n"))
            artist = ax.text(0, 0, wrapped, fontsize=_FONT, va="top", ha="left", linespacing=1.35,
                             gid=f"text:{name}")
            extent = artist.get_window_extent(renderer)
            if extent.width / figure.dpi <= box_w - 2 * _PAD or chars <= 12:
                return artist, extent.height / figure.dpi
            artist.remove()
            chars -= 2

    measured = []
    for phase, (name, text), side in rows:
        main_text, main_h = place(name, text, main_w)
        entry = {"phase": phase, "main": (name, main_text, main_h + 2 * _PAD), "side": None}
        if side:
            side_text, side_h = place(side[0], side[1], side_w)
            entry["side"] = (side[0], side_text, side_h + 2 * _PAD)
        measured.append(entry)
    # a phase's rows must be at least as tall as its rotated label: stretch its last main box if not
    for phase in dict.fromkeys(e["phase"] for e in measured):
        label = ax.text(0, 0, phase, rotation=90, fontsize=_PHASE_FONT, fontweight="bold")
        need = label.get_window_extent(renderer).height / figure.dpi + 0.16 - 2 * _PHASE_REACH
        label.remove()
        entries = [e for e in measured if e["phase"] == phase]
        have = sum(_row_height(e) for e in entries) + _GAP * (len(entries) - 1)
        if have < need:  # the text then sits in the middle of the taller box
            name, text, h = entries[-1]["main"]
            entries[-1]["main"] = (name, text, h + need - have)
            entries[-1]["offset"] = (need - have) / 2

    top, boxes, spans = -0.2, {}, {}
    for entry in measured:
        for part, x, w in (("main", main_x, main_w), ("side", side_x, side_w)):
            if entry[part]:
                name, text, h = entry[part]
                text.set_position((x + _PAD, top - _PAD - (entry.get("offset", 0.0) if part == "main" else 0.0)))
                boxes[name] = (x, top, w, h)
                ax.add_patch(FancyBboxPatch((x, top - h), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                            facecolor="white", edgecolor="#333333", linewidth=1.0,
                                            gid=f"box:{name}"))
        span = spans.setdefault(entry["phase"], [top, None])
        span[1] = top - _row_height(entry)
        top -= _row_height(entry) + _GAP
    names = [e["main"][0] for e in measured]
    for upper, lower in zip(names, names[1:]):
        x, y, w, h = boxes[upper]
        _arrow(ax, (x + w / 2, y - h), (x + w / 2, boxes[lower][1]))
    for entry in measured:
        if entry["side"]:
            x, y, w, h = boxes[entry["main"][0]]
            level = y - min(h, entry["side"][2]) / 2
            _arrow(ax, (x + w, level), (side_x, level))
    for phase, (high, low) in spans.items():
        high, low = high + _PHASE_REACH, low - _PHASE_REACH
        ax.add_patch(FancyBboxPatch((0.1, low), 0.3, high - low, boxstyle="round,pad=0,rounding_size=0.06",
                                    facecolor=_PHASE_COLOUR, edgecolor="none", gid=f"phase:{phase}"))
        ax.text(0.25, (high + low) / 2, phase, rotation=90, ha="center", va="center", fontsize=_PHASE_FONT,
                fontweight="bold", color="#1F3B5C")

    height = -(top + _GAP) + 0.2
    figure.set_size_inches(width, height)
    ax.set_xlim(0, width)
    ax.set_ylim(-height, 0)
    return figure


def _row_height(entry: dict) -> float:
    return max(entry["main"][2], entry["side"][2] if entry["side"] else 0.0)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#333333", lw=1.0,
                                 shrinkA=0, shrinkB=0))
