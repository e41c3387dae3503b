"""What the synthesis implies for the next study, from ``s["design"]["single_arm"]``: the operating
characteristics of a single-arm study judged against a benchmark, and its assurance (the probability of
success averaged over what the synthesis says about θ) under each design prior."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .style import SEQUENCE, WIDTH, legend_below, styled  # noqa: E402

PRIOR_ORDER = ("no selection", "omega 0.5", "omega 0.25", "omega 0.1", "omega averaged")
PRIOR_MARKERS = ("o", "s", "^", "v", "D", "P", "X")


def _sizes(block: dict) -> list[str]:
    return sorted(block["oc"], key=lambda k: int(k))


def _prior_label(name: str) -> str:
    """"omega 0.25" → "ω = 0.25"; "omega averaged" → "ω averaged"."""
    return name.replace("omega ", "ω = " if name[6:7].isdigit() else "ω ") if name.startswith("omega ") else name


def _priors(table: dict) -> list[str]:
    return [p for p in PRIOR_ORDER if p in table] + [p for p in table if p not in PRIOR_ORDER]


@styled
def operating(s: dict) -> plt.Figure:
    """Operating characteristics of a single-arm study: the probability of success (the analysis prior's
    posterior P(θ > benchmark) at least the required probability) against the true response probability
    θ, one curve per study size, with the benchmark as a vertical line and each size's false-success
    rate (its success probability at θ = benchmark) marked on it.

    Reads ``s["design"]["single_arm"]``: theta, oc {size: [P(success | θ)]}, benchmark, probability,
    critical {size: responders needed}, false_success {size: rate}, analysis_prior."""
    block = s["design"]["single_arm"]
    theta = np.asarray(block["theta"], dtype=float)
    benchmark = float(block["benchmark"])
    figure, ax = plt.subplots(figsize=(WIDTH, 4.2), layout="constrained")
    handles = []
    for i, size in enumerate(_sizes(block)):
        colour = SEQUENCE[i % len(SEQUENCE)]
        curve = np.asarray(block["oc"][size], dtype=float)
        ax.plot(theta, curve, color=colour, lw=1.7, gid=f"oc:{size}")
        false = (block.get("false_success") or {}).get(size)
        if false is not None:
            ax.plot([benchmark], [false], "o", color=colour, ms=6, mec="white", mew=0.8, zorder=4,
                    gid=f"false_success:{size}")
        critical = (block.get("critical") or {}).get(size)
        need = f": ≥ {critical} responders" if critical is not None else ": cannot succeed"
        rate = f", false success {false:.3f}" if false is not None else ""
        handles.append(Line2D([], [], color=colour, lw=1.7, marker="o", label=f"n = {size}{need}{rate}"))
    ax.axvline(benchmark, color="#444444", lw=1.0, ls="--", gid="benchmark")
    ax.annotate(f"benchmark θ = {benchmark:g}\n(dots: false-success rate)", (benchmark, 0.97),
                xycoords=("data", "axes fraction"), xytext=(-5, 0), textcoords="offset points", ha="right",
                va="top", fontsize=8, color="#444444")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("true response probability of the new study's patients, θ")
    ax.set_ylabel("probability of success")
    prior = block.get("analysis_prior")
    prior_text = f", analysis prior Beta({prior[0]:g}, {prior[1]:g})" if prior else ""
    ax.set_title(f"A single-arm study succeeds if P(θ > {benchmark:g} | data) ≥ {float(block['probability']):g}"
                 f"{prior_text}")
    legend_below(figure, handles, ncols=2, fontsize=8)
    return figure


@styled
def assurance(s: dict) -> plt.Figure:
    """Assurance (the probability of success averaged over a design prior for θ) against study size, one
    line per design prior: no selection, the fixed selection strengths ω and ω averaged (left); and at the
    largest size against the benchmark (right). The legend gives each design prior's mean and 95% interval.

    Reads ``s["design"]["single_arm"]``: assurance {prior: {size: value}}, benchmark_sensitivity {prior:
    {benchmark: value}}, benchmark, sizes; ``s["design"]["design_priors"]`` {prior: {mean, lo, hi}}."""
    block = s["design"]["single_arm"]
    design_priors = s["design"].get("design_priors") or {}
    figure, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.9), layout="constrained", sharey=True)
    handles = []
    table = block["assurance"]
    priors = _priors(table)
    offsets = np.linspace(-0.012, 0.012, len(priors)) if len(priors) > 1 else np.zeros(1)
    for i, (prior, offset) in enumerate(zip(priors, offsets)):
        colour, marker = SEQUENCE[i % len(SEQUENCE)], PRIOR_MARKERS[i % len(PRIOR_MARKERS)]
        sizes = sorted(table[prior], key=int)
        x = np.array([int(k) for k in sizes], dtype=float)
        values = np.array([table[prior][k] for k in sizes], dtype=float)
        left.plot(x * (1 + offset), values, color=colour, marker=marker, ms=5, lw=1.4, gid=f"assurance:{prior}")
        sensitivity = (block.get("benchmark_sensitivity") or {}).get(prior)
        if sensitivity:
            benchmarks = sorted(sensitivity, key=float)
            bx = np.array([float(b) for b in benchmarks])
            right.plot(bx + offset, [sensitivity[b] for b in benchmarks], color=colour, marker=marker, ms=5, lw=1.4,
                       gid=f"benchmark:{prior}")
        dp = design_priors.get(prior)
        extra = f": θ {dp['mean']:.2f} ({dp['lo']:.2f}–{dp['hi']:.2f})" if dp else ""
        handles.append(Line2D([], [], color=colour, marker=marker, lw=1.4, label=f"{_prior_label(prior)}{extra}"))
    sizes = sorted({int(k) for p in priors for k in table[p]})
    left.set_xticks(sizes, [str(n) for n in sizes])
    left.set_xlabel("patients in the new study, n")
    left.set_ylabel("assurance (probability of success)")
    left.set_ylim(-0.02, 1.05)
    left.set_title(f"Assurance by study size (benchmark {float(block['benchmark']):g})", fontsize=9)
    benchmarks = sorted({float(b) for p in priors for b in (block.get("benchmark_sensitivity") or {}).get(p, {})})
    if benchmarks:
        right.set_xticks(benchmarks, [f"{b:g}" for b in benchmarks])
        right.axvline(float(block["benchmark"]), color="#888888", lw=0.9, ls="--", zorder=0)
    right.set_xlabel("benchmark response probability")
    right.set_title(f"At the largest size (n = {max(sizes) if sizes else '?'}), by benchmark", fontsize=9)
    right.tick_params(labelleft=True)
    figure.suptitle("Assurance of a single-arm study under each design prior (what the synthesis says about θ)",
                    x=0.01, ha="left", fontsize=9.5)
    legend_below(figure, handles, ncols=2, fontsize=8, title="design prior for θ (mean, 95% interval)")
    return figure
