"""The report's figures (`analysis.report.figures`), drawn from a trimmed `summary.json` of the shipped data
(`tests/data/summary_example.json`): each figure shows what it must (titles and axis labels, threshold lines
at their values, the number of bars and points, the extrapolated curve dashed, the collapsed leave-one-out
bar, the pooled-only counts of the risk-of-bias summary, the icon counts, the reversed log ω axis), no text
leaves the figure or runs into another, the package imports nothing of the sampler stack, and `draw`
writes PNGs (SVGs only when asked) in worker processes that load neither pymc nor jax. The ArviZ
diagnostics (`figures.diagnostics`) are tested at the end on a
synthetic posterior, as the old module's tests do."""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz_plots as azp  # noqa: E402
import arviz_stats  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402
from scipy import special, stats  # noqa: E402

from analysis.report import figures  # noqa: E402
from analysis.report.figures import (appraisal, bias, borrowing, clinical, clinician, design, meta,  # noqa: E402
                                     sensitivity, style)
from analysis.report.figures import diagnostics as af  # noqa: E402

PACKAGE = Path(figures.__file__).parent
ROOT = PACKAGE.parents[2]
EXAMPLE = Path(__file__).parent / "data" / "summary_example.json"
SAMPLER_STACK = ("pymc", "pytensor", "jax", "jaxlib", "blackjax", "numpyro")
ALLOWED = {"numpy", "scipy", "xarray", "matplotlib", "arviz_base", "arviz_stats", "arviz_plots"}


@pytest.fixture(scope="module")
def s() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- helpers ------------------------------------------------------------------------------------------------


def all_axes(figure) -> list:
    return [ax for ax in figure.get_axes() if ax.get_visible()]


def tick_labels(ax, axis: str = "y", draw: bool = True) -> list[str]:
    """The tick labels of `ax` inside its view limits, from the lowest value up (bottom to top, or left to
    right on an axis that is not reversed)."""
    if draw:
        ax.get_figure(root=True).canvas.draw()
    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = sorted(target.get_view_interval())
    ticks = sorted((t for t in target.get_major_ticks() if low - 1e-9 <= t.get_loc() <= high + 1e-9),
                   key=lambda t: t.get_loc())
    return [t.label1.get_text() if t.label1.get_visible() else t.label2.get_text() for t in ticks]


def right_tick_labels(ax) -> list[str]:
    """Tick labels of a twin axes on the right (twinx) of `ax`."""
    twins = [other for other in ax.get_figure(root=True).get_axes() if other is not ax and
             other.bbox.bounds == ax.bbox.bounds]
    assert twins, "no twin axes"
    return tick_labels(twins[0], "y")


def by_gid(figure, prefix: str) -> list:
    return [a for a in figure.findobj(lambda a: (a.get_gid() or "").startswith(prefix))]


def markers(figure, prefix: str) -> list[Line2D]:
    """The data lines (markers) of errorbar containers whose gid starts with `prefix` (errorbar gives its
    gid to its caps and bars too)."""
    return [a for a in by_gid(figure, prefix) if isinstance(a, Line2D) and a.get_marker() not in
            ("_", "|", "None", "", None)]


def drawn_texts(figure, draw: bool = True) -> list[Text]:
    """Every visible, non-empty text the figure draws: titles, labels, annotations, legend entries and the
    tick labels inside the view limits."""
    if draw:
        figure.canvas.draw()
    ticks_shown, ticks_all = set(), set()
    for ax in figure.get_axes():
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    ticks_all.add(id(label))
                    if low - 1e-9 <= tick.get_loc() <= high + 1e-9 and ax.get_visible() and ax.axison:
                        ticks_shown.add(id(label))
    out = []
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        if id(text) in ticks_all and id(text) not in ticks_shown:
            continue
        axes = text.axes
        if axes is not None and (not axes.get_visible() or (not axes.axison and id(text) in ticks_all)):
            continue
        out.append(text)
    return out


def clipped(figure, texts: list[Text] | None = None) -> list[str]:
    """Texts that reach outside the figure."""
    texts = drawn_texts(figure) if texts is None else texts
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    return [t.get_text() for t in texts if (e := t.get_window_extent(renderer)).x0 < box.x0 - 1
            or e.x1 > box.x1 + 1 or e.y0 < box.y0 - 1 or e.y1 > box.y1 + 1]


def overlapping(figure, tolerance: float = 1.5, texts: list[Text] | None = None) -> list[tuple[str, str]]:
    """Pairs of texts whose extents overlap by more than `tolerance` pixels each way."""
    texts = drawn_texts(figure) if texts is None else texts
    renderer = figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    pairs = []
    for i, (a, ea) in enumerate(boxes):
        for b, eb in boxes[i + 1:]:
            dx = min(ea.x1, eb.x1) - max(ea.x0, eb.x0)
            dy = min(ea.y1, eb.y1) - max(ea.y0, eb.y0)
            if dx > tolerance and dy > tolerance:
                pairs.append((a, b))
    return pairs


def lines_at(ax, value: float, axis: str = "y") -> list[Line2D]:
    """Lines of `ax` that are horizontal (axis="y") or vertical (axis="x") at `value`."""
    found = []
    for line in ax.get_lines():
        data = np.asarray(line.get_ydata() if axis == "y" else line.get_xdata(), dtype=float)
        if data.size >= 2 and np.allclose(data, value):
            found.append(line)
    return found


# --- every figure ---------------------------------------------------------------------------------------------


def figure_jobs(s: dict) -> list[figures.Job]:
    """Every figure of the package that reads `summary.json`, as `Job`s."""
    variants = s["sensitivity"]["variants"]
    return [
        figures.Job("forest", meta.forest, (s,)),
        figures.Job("funnel", meta.funnel, (s["small_study"], s["reports"])),
        figures.Job("cumulative", meta.cumulative, (s,)),
        figures.Job("graded", meta.graded, (s,)),
        figures.Job("missingness", meta.missingness, (s,)),
        figures.Job("tipping", bias.tipping, (s,)),
        figures.Job("omega", bias.omega, (s,)),
        figures.Job("tornado", sensitivity.tornado, (variants, s["pooled"]["mean"])),
        figures.Job("sensitivity_forest", sensitivity.forest, (variants, s["target"]["target_drug"])),
        figures.Job("borrowing_update", borrowing.update, (s["target"],)),
        figures.Job("borrowing_sweep", borrowing.sweep, (s["target"],)),
        figures.Job("map_fit", borrowing.map_fit, (s["target"],)),
        figures.Job("risk_of_bias", appraisal.risk_of_bias, (s["risk_of_bias"],)),
        figures.Job("prisma", appraisal.prisma, (s["prisma"],)),
        figures.Job("time_to_response", clinical.time_to_response, (s,)),
        figures.Job("operating", design.operating, (s,)),
        figures.Job("assurance", design.assurance, (s,)),
        figures.Job("icon_array", clinician.icon_array, (s,)),
    ]


def test_every_figure_is_readable_labelled_and_keeps_its_text_inside(s):
    """Each figure: at most the report width, constrained layout (or placed in inches), labelled axes, no
    text outside the figure and no two texts on top of each other."""
    problems = []
    for job in figure_jobs(s):
        figure = job.function(*job.args)
        assert isinstance(figure, plt.Figure), job.name
        figure.canvas.draw()
        width = figure.get_size_inches()[0]
        assert width <= style.WIDTH + 1e-9, (job.name, width)
        for ax in all_axes(figure):
            if not ax.axison or not ax.get_lines() + ax.patches + ax.collections:
                continue
            if ax.get_xlabel() == "" and ax.get_xaxis().get_visible() and job.name not in ("risk_of_bias",):
                shares = [o for o in all_axes(figure) if o is not ax and o.get_xlabel()
                          and abs(o.bbox.x0 - ax.bbox.x0) < 2]  # a column's label under its last row
                if not shares and ax.bbox.width > 20 and any(tick_labels(ax, "x", draw=False)):
                    problems.append(f"{job.name}: an axes without an x label")
        texts = drawn_texts(figure, draw=False)
        if out := clipped(figure, texts=texts):
            problems.append(f"{job.name}: text outside the figure: {out[:3]}")
        if pairs := overlapping(figure, texts=texts):
            problems.append(f"{job.name}: overlapping texts: {pairs[:3]}")
        plt.close(figure)
    assert not problems, "\n".join(problems)


def test_the_overlap_and_clipping_checks_can_fail():
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.text(0.5, 0.5, "one label", transform=ax.transAxes)
    ax.text(0.52, 0.5, "another label", transform=ax.transAxes)
    ax.text(1.3, 0.5, "far outside the figure", transform=ax.transAxes)
    assert ("one label", "another label") in overlapping(figure)
    assert "far outside the figure" in clipped(figure) and "one label" not in clipped(figure)


# --- the package --------------------------------------------------------------------------------------------


def forbidden_imports(source: str) -> set[str]:
    """Imports of `source` outside the standard library, numpy, scipy, xarray, matplotlib and ArviZ, other
    than relative imports within the package."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:  # this package's own modules
                continue
            names = [("." * node.level) + (node.module or "")]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if name.startswith(".") or (top not in ALLOWED and top not in sys.stdlib_module_names
                                        and top != "__future__"):
                found.add(name)
    return found


def test_the_package_imports_only_the_standard_library_numpy_scipy_xarray_matplotlib_and_arviz():
    files = sorted(PACKAGE.glob("*.py"))
    assert {f.stem for f in files} >= {"__init__", "style", "meta", "bias", "sensitivity", "borrowing", "appraisal",
                                       "clinical", "design", "clinician", "diagnostics"}
    found = {f.name: forbidden_imports(f.read_text(encoding="utf-8")) - {"analysis.processes", "analysis.digits"}
             for f in files}
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    # the check itself sees what it must refuse
    assert forbidden_imports("import pymc\nfrom analysis.steps import x\nfrom ..engine import y\n"
                             "import jax.numpy as jnp\nimportlib.import_module('pytensor')\n") == \
        {"pymc", "analysis.steps", "..engine", "jax.numpy", "pytensor"}
    assert not forbidden_imports("import math\nfrom .style import WIDTH\nfrom scipy import stats\n")


def test_importing_the_figure_modules_loads_no_sampler_stack():
    """In a fresh interpreter: the package and every module but `diagnostics` load no pymc, pytensor, jax or
    blackjax and no other `analysis` module (but the workers' initializer and the digits rule, both standard
    library only); `diagnostics` adds no jax module to those ArviZ loads itself."""
    script = (
        "import sys, json\n"
        "def loaded(top): return sorted(m for m in sys.modules if m.split('.')[0] == top)\n"
        "import analysis.report.figures as f\n"
        "from analysis.report.figures import appraisal, bias, borrowing, clinical, clinician, design, meta, "
        "sensitivity, style\n"
        "plain = {top: loaded(top) for top in %r}\n"
        "import arviz_base, arviz_stats, arviz_plots, arviz_stats.psense, arviz_stats.ecdf_utils\n"
        "arviz_only = loaded('jax')\n"
        "from analysis.report.figures import diagnostics\n"
        "after = {top: loaded(top) for top in %r}\n"
        "print(json.dumps({'plain': plain, 'arviz_only': arviz_only, 'after': after}))\n"
    ) % ((*SAMPLER_STACK, "analysis"), (*SAMPLER_STACK, "analysis"))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in SAMPLER_STACK:
        assert result["plain"][name] == [], f"{name} loaded by the figure modules: {result['plain'][name][:5]}"
    for name in ("pymc", "pytensor", "blackjax"):
        assert result["after"][name] == [], f"{name} loaded by diagnostics"
    assert set(result["after"]["jax"]) == set(result["arviz_only"]), "diagnostics loads jax beyond ArviZ"
    assert all(m in ("analysis", "analysis.report", "analysis.processes", "analysis.digits")
               or m.startswith("analysis.report.figures")
               for m in result["after"]["analysis"]), result["after"]["analysis"]


def test_draw_writes_pngs_in_worker_processes_that_load_no_sampler_stack(s, tmp_path, monkeypatch):
    """The workers are started while the parent's main module is a stand-in for ``python -m analysis.fit``
    (a module run by name): "spawn" would run it again in each worker as ``__mp_main__``, bringing its
    imports along, unless `draw` starts its workers without it."""
    import importlib.machinery
    import types

    figures.shutdown()
    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("tabnanny", None)  # any module run with -m
    monkeypatch.setitem(sys.modules, "__main__", main)
    jobs = [j for j in figure_jobs(s) if j.name in ("forest", "tipping", "icon_array", "risk_of_bias")]
    try:
        drawn = figures.draw(jobs, tmp_path / "png")
    finally:
        figures.shutdown()
    assert [d.name for d in drawn] == [j.name for j in jobs]  # results in job order
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(f"{j.name}.png" for j in jobs)
    for d in drawn:
        assert d.files == (tmp_path / "png" / f"{d.name}.png",) and d.files[0].stat().st_size > 5_000
        assert d.pid != os.getpid(), "drawn in the calling process, not a worker"
        for name in SAMPLER_STACK:
            assert name not in d.modules, f"the worker that drew {d.name} loaded {name}"
        assert d.main is None, f"the worker ran the parent's main module again: {d.main}"
        assert "pytest" not in d.modules and "_pytest" not in d.modules
        analysis = [m for m in d.modules if m.startswith("analysis.")]
        assert all(m in ("analysis.report", "analysis.processes", "analysis.digits")
                   or m.startswith("analysis.report.figures") for m in analysis), analysis
    assert len({d.pid for d in drawn}) <= figures.WORKERS


def test_draw_writes_svgs_when_asked_and_the_same_bytes_every_time(s, tmp_path):
    jobs = [j for j in figure_jobs(s) if j.name in ("funnel", "prisma")]
    first = figures.draw(jobs, tmp_path / "a", svg=True)
    second = figures.draw(jobs, tmp_path / "b", svg=True)
    for a, b in zip(first, second):
        assert [p.suffix for p in a.files] == [".png", ".svg"]
        for pa, pb in zip(a.files, b.files):
            assert pa.read_bytes() == pb.read_bytes(), f"{pa.name} differs between two draws"
    svg = (tmp_path / "a" / "funnel.svg").read_text(encoding="utf-8")
    assert "<dc:date>" not in svg and "extrapolation" in svg  # no date; text kept as text


def test_draw_names_a_failing_figure_and_still_draws_the_others(s, tmp_path):
    jobs = [figures.Job("forest", meta.forest, (s,)), figures.Job("broken_funnel", meta.funnel, ({}, None)),
            figures.Job("omega", bias.omega, (s,))]
    with pytest.raises(figures.FigureError, match=r"'broken_funnel' \(analysis\.report\.figures\.meta\.funnel\)"
                                                  r" failed: AttributeError"):
        figures.draw(jobs, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forest.png", "omega.png"]
    with pytest.raises(ValueError, match="unique"):
        figures.draw([jobs[0], jobs[0]], tmp_path)


def test_save_writes_png_and_an_svg_only_when_asked(s, tmp_path):
    files = figures.save(meta.forest(s), tmp_path, "forest")
    assert files == (tmp_path / "forest.png",) and not (tmp_path / "forest.svg").exists()
    files = figures.save(meta.forest(s), tmp_path, "forest", svg=True)
    assert [f.name for f in files] == ["forest.png", "forest.svg"]
    from PIL import Image

    with Image.open(tmp_path / "forest.png") as image:  # 7.5 in at 150 dpi
        assert image.size[0] == round(style.WIDTH * style.DPI)


# --- meta -------------------------------------------------------------------------------------------------------


def test_forest_orders_reports_by_size_with_y_of_n_labels_crude_line_and_both_intervals(s):
    figure = meta.forest(s)
    ax = figure.axes[0]
    names = [n for n in tick_labels(ax)[::-1] if n in s["reports"]]  # top to bottom
    sizes = [s["reports"][n]["n"] for n in names]
    assert len(names) == 12 and sizes == sorted(sizes, reverse=True) and names[0] == "Series14_Menta2024"
    right = right_tick_labels(ax)[::-1]
    assert right[:2] == ["8/14", "7/8"] and right[-2].startswith("0.87 (")
    crude = s["comparators"]["crude"]["proportion"]
    assert lines_at(ax, crude, axis="x"), "no crude line"
    r = s["reports"]["JasansBarcelo2020"]
    xs = [tuple(np.round(line.get_xdata(), 6)) for line in ax.get_lines()]
    assert tuple(np.round(r["raw_ci95"], 6)) in xs and tuple(np.round(r["ci95"], 6)) in xs
    assert "12 reports" in ax.get_title(loc="left") and ax.get_xlabel().startswith("probability of any response")


def test_forest_shows_the_40_largest_of_many_reports_and_says_so(s):
    many = copy.deepcopy(s)
    template = many["reports"]["Albers2017"]
    for i in range(33):
        many["reports"][f"Extra{i:02d}"] = {**template, "n": 1, "y": 1, "year": 2025}
    figure = meta.forest(many)
    ax = figure.axes[0]
    assert "the 40 largest of 45 reports" in ax.get_title(loc="left")
    assert len(tick_labels(ax)) == 42  # 40 reports, the pooled mean and the predictive


def test_funnel_dashes_the_extrapolation_beyond_the_largest_report(s):
    block = s["small_study"]
    figure = meta.funnel(block, s["reports"])
    ax = figure.axes[0]
    solid = by_gid(figure, "curve:fitted")[0]
    dashed = by_gid(figure, "curve:extrapolation")[0]
    largest = block["observed_sizes"][1]
    assert solid.get_xdata()[-1] == pytest.approx(largest) and dashed.get_xdata()[0] == pytest.approx(largest)
    assert dashed.get_xdata()[-1] == pytest.approx(block["curve"]["n"][-1])
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    assert any(t.get_text() == "extrapolation" for t in ax.texts)
    assert ax.get_xscale() == "log" and all(label.isdigit() for label in tick_labels(ax, "x"))  # integer sizes
    # reports with the same counts labelled once; the stacked labels start right of the y axis
    stacked = by_gid(figure, "label:stacked")
    assert {t.get_text() for t in stacked} >= {"1/1 (4 reports)", "3/3 (5 reports)"}
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    for text in stacked:
        assert text.get_window_extent(renderer).x0 > ax.bbox.x0 + 2, f"{text.get_text()} runs into the y axis"
    points = sum(len(c.get_offsets()) for c in by_gid(figure, "reports:"))
    assert points == len(s["reports"])


def test_cumulative_draws_both_year_conventions(s):
    figure = meta.cumulative(s)
    ax = figure.axes[0]
    first, moved = by_gid(figure, "cumulative:0")[0], by_gid(figure, "cumulative:1")[0]
    assert list(first.get_ydata()) == [st["pooled"]["mean"] for st in s["cumulative"]["steps"]]
    assert list(moved.get_ydata()) == [st["pooled"]["mean"] for st in s["cumulative"]["first_seen"]["steps"]]
    assert tick_labels(ax, "x") == [str(st["year"]) for st in s["cumulative"]["steps"]]
    legend = " ".join(t.get_text() for t in figure.legends[0].get_texts())
    assert "Series14_Menta2024 at 2024" in legend
    single = copy.deepcopy(s)
    single["cumulative"]["first_seen"] = None
    assert not by_gid(meta.cumulative(single), "cumulative:1")


def test_graded_shows_each_outcome_pooled_and_each_grading_report(s):
    figure = meta.graded(s)
    block = s["graded"]
    for key in ("any", "marked", "complete", "sustained"):
        observed = sum(r[key]["observed"] is not None for r in block["reports"].values())
        assert len(by_gid(figure, f"observed:{key}")[0].get_offsets()) == observed == block[key]["reports"]
        assert list(by_gid(figure, f"pooled:{key}")[0].get_xdata()) == block[key]["pooled"]["ci95"]


def test_missingness_marks_mar_and_the_worst_case_on_a_delta_axis_ending_in_infinity(s):
    figure = meta.missingness(s)
    block = s["graded"]["missingness"]
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert len(panels) == 4
    for ax in panels:
        labels = tick_labels(ax, "x")
        assert labels[0] == "0" and labels[-1] == "∞"
        assert {t.get_text() for t in ax.texts} == {"MAR", "worst case"}
        assert len(labels) == len(block["delta"])
    assert all("log-odds shift of an ungraded stage" in ax.get_xlabel() for ax in panels[2:])
    for key in ("any", "marked", "complete", "sustained"):
        line = by_gid(figure, f"missingness:{key}")[0]
        assert list(line.get_ydata()) == [e["mean"] for e in block["outcomes"][key]]
    assert len(by_gid(figure, "delta:mar")) == 4 and len(by_gid(figure, "delta:infinity")) == 4
    infinity = by_gid(figure, "delta:infinity")[0].get_xdata()[0]
    assert infinity > max(d for d in block["delta"] if d is not None)


# --- bias ---------------------------------------------------------------------------------------------------


def test_tipping_curve_on_a_reversed_log_omega_axis_with_thresholds_crossings_and_the_averaged_answer(s):
    block = s["bias"]
    figure = bias.tipping(s)
    ax, side = figure.axes[0], figure.axes[1]
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > right, "the ω axis is not reversed"
    assert left == pytest.approx(1.0, rel=0.1) and right == pytest.approx(block["omega_min"], rel=0.1)
    assert ax.get_xlabel() == "reports with a non-responder published with relative probability ω"
    curve = by_gid(figure, "curve:mean")[0]
    assert list(curve.get_xdata()) == block["curve"]["omega"] and list(curve.get_ydata()) == block["curve"]["mean"]
    for i, point in enumerate(block["tipping"]):
        line = by_gid(figure, f"threshold:{i}")[0]
        assert np.allclose(line.get_ydata(), point["threshold"])
        crossing = by_gid(figure, f"crossing:{i}")[0]
        assert crossing.get_xdata()[0] == pytest.approx(point["omega"])
        assert crossing.get_ydata()[0] == pytest.approx(point["threshold"])
    scenarios = markers(figure, "scenario:")
    assert len(scenarios) == len(block["scenarios"]) == 5
    assert sorted(m.get_ydata()[0] for m in scenarios) == sorted(sc["pooled"]["mean"] for sc in block["scenarios"])
    averaged = markers(figure, "averaged:log_uniform")
    assert len(averaged) == 1 and averaged[0].axes is side
    assert averaged[0].get_ydata()[0] == pytest.approx(block["averaged"]["pooled"]["mean"])
    figure.canvas.draw()
    assert side.bbox.x0 > ax.bbox.x1, "the averaged answer is not at the right"


def test_omega_prior_and_posterior_on_a_reversed_log_axis(s):
    density = s["bias"]["averaged"]["density"]
    figure = bias.omega(s)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] > ax.get_xlim()[1]
    assert list(by_gid(figure, "prior:averaged")[0].get_ydata()) == density["prior"]
    assert list(by_gid(figure, "posterior:averaged")[0].get_ydata()) == density["posterior"]
    assert ax.get_ylabel() == "density of log ω"
    legend = " ".join(t.get_text() for t in figure.legends[0].get_texts())
    assert "P(ω < 0.1) 0.50 → 0.69" in legend


# --- sensitivity --------------------------------------------------------------------------------------------


def _bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and (p.get_gid() or "").startswith("bar:")]


def test_tornado_splits_bias_from_choices_keeps_the_primary_estimand_and_collapses_leave_one_out(s):
    rows = s["sensitivity"]["variants"]
    figure = sensitivity.tornado(rows, s["pooled"]["mean"])
    biased, choices = figure.axes[0], figure.axes[1]
    assert biased.get_title(loc="left").startswith("If publication were biased")
    assert choices.get_title(loc="left").startswith("If a choice were different")
    expected_bias = [r for r in rows if r["kind"] == "bias" and r["estimand"] == "primary"]
    assert len(_bars(biased)) == len(expected_bias) == 6
    labels = tick_labels(choices)
    assert "without any one 3/3 report (5 reports)" in labels
    assert "without any one 1/1 report (4 reports)" in labels
    assert not any(label in labels for label in ("without Albers2017", "without Kollman2018"))
    loo = [r for r in rows if r["variant"].startswith("loo_")]
    distinct = len({r["pooled"]["mean"] for r in loo})
    assert sum(label.startswith("without") for label in labels) == distinct == 5
    # the other estimands (other outcomes, average covariates) are not bars; unchanged rows are one line
    text = " ".join(tick_labels(biased) + labels)
    assert "meta-regression" not in text and "outcome:" not in text and "graded" not in text
    assert any(label.startswith("no change: target arm borrowing") for label in labels)
    shifts = [p.get_width() for p in _bars(choices)]
    assert [abs(v) for v in shifts] == sorted((abs(v) for v in shifts), reverse=True)
    assert "0.868" in choices.get_xlabel()


def test_tornado_and_forest_show_failed_and_not_run_variants_as_such(s):
    rows = copy.deepcopy(s["sensitivity"]["variants"])
    failed = next(r for r in rows if r["variant"] == "sens_prior_bda3")
    failed["status"] = "failed"
    not_run = next(r for r in rows if r["variant"] == "sens_tau_hc1")
    not_run.update(status="not run", pooled=None, predictive=None, target=None, pooled_shift=None)
    figure = sensitivity.tornado(rows, s["pooled"]["mean"])
    labels = {t.get_text(): t.get_color() for t in figure.axes[1].get_yticklabels()}
    assert labels["prior: bda3 (FAILED, no estimate)"] == style.FAILED_COLOUR
    assert labels["τ prior: HC(1) (NOT RUN, no estimate)"] == style.FAILED_COLOUR
    figure = sensitivity.forest(rows)
    labels = {t.get_text(): t.get_color() for t in figure.axes[0].get_yticklabels()}
    assert labels["bda3 (FAILED)"] == style.FAILED_COLOUR  # its estimate drawn in red
    assert labels["τ HC(1) (NOT RUN, no estimate)"] == style.FAILED_COLOUR


def test_sensitivity_forest_splits_the_primary_estimand_from_other_outcomes(s):
    rows = s["sensitivity"]["variants"]
    figure = sensitivity.forest(rows, "naloxone")
    assert len(figure.subfigs) == 2
    upper, lower = figure.subfigs
    top = [ax for ax in upper.axes]
    bottom = [ax for ax in lower.axes]
    assert [ax.get_title(loc="center") for ax in top] == ["pooled mean", "new report (predictive)", "naloxone"]
    assert [ax.get_title(loc="center") for ax in bottom] == ["pooled mean", "new report (predictive)"]
    primary_rows = [r for r in rows if r["estimand"] == "primary"]
    other_rows = [r for r in rows if r["estimand"] != "primary"]
    assert len(by_gid(upper, "estimate:pooled")) == len(primary_rows)
    assert len(by_gid(lower, "estimate:pooled")) == len(other_rows)
    upper_labels, lower_labels = tick_labels(top[0]), tick_labels(bottom[0])
    assert "LEAVE ONE OUT" in upper_labels and "MARKED RESPONSE" in lower_labels
    assert any("average covariates" in label.lower() for label in lower_labels)
    assert not any("MARKED" in label for label in upper_labels)


# --- borrowing ----------------------------------------------------------------------------------------------


def test_borrowing_update_draws_the_four_exact_densities_on_a_log_axis(s):
    target = s["target"]
    figure = borrowing.update(target)
    left, right = figure.axes[0], figure.axes[1]
    assert left.get_yscale() == "log" and left.get_ylim()[0] == pytest.approx(borrowing.DENSITY_FLOOR)
    for key in ("map_prior", "robust_prior", "likelihood", "posterior"):
        line = by_gid(figure, f"density:{key}")[0]
        assert list(line.get_ydata()) == target["densities"][key]
        cdf = by_gid(figure, f"cdf:{key}")[0].get_ydata()
        assert cdf[-1] == pytest.approx(1.0) and np.all(np.diff(cdf) >= -1e-12)
    assert left.get_ylim()[1] >= max(target["densities"]["map_prior"])
    assert f"{target['posterior_map_distance']:.3f}" in right.get_title(loc="left")


def test_borrowing_sweep_has_both_routes_per_weight(s):
    target = s["target"]
    figure = borrowing.sweep(target)
    ax = figure.axes[0]
    for route in ("exact", "two_step"):
        line = markers(figure, f"route:{route}")[0]
        assert list(np.round(line.get_ydata(), 6)) == [r[route]["mean"] for r in target["sweep"]]
    assert lines_at(ax, target["robust_weight"], axis="x")
    assert "weight of the vague component" in ax.get_xlabel()


def test_map_fit_draws_the_beta_mixture_against_the_exact_map_density(s):
    target = s["target"]
    figure = borrowing.map_fit(target)
    mixture = by_gid(figure, "density:mixture")[0]
    theta = np.asarray(target["densities"]["theta"])
    expected = sum(w * stats.beta.pdf(theta, a, b) for w, a, b in target["map_fit"]["components"])
    assert np.allclose(mixture.get_ydata(), expected)
    assert list(by_gid(figure, "density:exact")[0].get_ydata()) == target["densities"]["map_prior"]
    difference = by_gid(figure, "cdf:difference")[0].get_ydata()
    assert np.max(np.abs(difference)) < 0.05  # the fit is close: a broken mixture would not be
    assert "4 components" in " ".join(t.get_text() for t in figure.legends[0].get_texts())


# --- appraisal -----------------------------------------------------------------------------------------------


def test_risk_of_bias_summary_counts_the_pooled_reports_only(s):
    rob = s["risk_of_bias"]
    figure = appraisal.risk_of_bias(rob)
    lights, bars = figure.axes[0], figure.axes[2]
    pooled = rob["pooled_reports"]
    assert bars.get_xlabel().startswith(f"share of the {len(pooled)} pooled reports")
    assert bars.get_title(loc="left") == f"Summary: share of the {len(pooled)} pooled reports per answer"
    # every bar: its width is its count among the pooled reports
    for item in rob["items"]:
        label = f"Q{item['number']} {item['label']}"
        for answer, count in rob["pooled_items"][item["key"]].items():
            found = [p for p in bars.patches if p.get_gid() == f"bar:item:{label}:{answer}"]
            assert len(found) == (1 if count else 0), (label, answer)
            if count:
                assert found[0].get_width() == pytest.approx(100 * count / len(pooled))
    overall = {c: [p for p in bars.patches if p.get_gid() == f"bar:overall:Overall concern:{c}"] for c in
               ("low", "moderate", "high")}
    assert {c: round(p[0].get_width() * len(pooled) / 100) if p else 0 for c, p in overall.items()} == \
        rob["pooled_overall"]
    # the counts differ from a count over every appraised report (17), so the check can fail
    everyone = {c: sum(r["overall"] == c for r in rob["reports"].values()) for c in ("low", "moderate", "high")}
    assert everyone != rob["pooled_overall"]
    # every appraised report has its row of lights; the pooled ones first, the others below the line
    assert len(by_gid(figure, "light:")) == len(rob["reports"]) * (len(rob["items"]) + 1)
    rows = tick_labels(lights)[::-1]
    assert rows[:len(pooled)] == pooled and set(rows[len(pooled):]) == set(rob["reports"]) - set(pooled)
    assert by_gid(figure, "separator:not-pooled")


def test_risk_of_bias_vocabulary_is_the_appraisal_modules():
    from analysis.inputs import appraisal as inputs

    assert appraisal.ANSWERS == inputs.ANSWERS and appraisal.CONCERNS == inputs.CONCERNS
    assert appraisal.CORE_ITEMS == inputs.CORE_ITEMS


def test_prisma_boxes_hold_the_counts_and_their_text(s):
    figure = appraisal.prisma(s["prisma"])
    ax = figure.axes[0]
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = {p.get_gid()[4:]: p.get_window_extent(renderer) for p in ax.patches if (p.get_gid() or "")[:4] == "box:"}
    texts = {t.get_gid()[5:]: t for t in ax.texts if (t.get_gid() or "").startswith("text:")}
    assert set(boxes) == set(texts) == {"identified", "assessed", "excluded", "in_table", "outside", "included"}
    for name, text in texts.items():
        extent, box = text.get_window_extent(renderer), boxes[name]
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1, name
    assert "(n = 22)" in texts["assessed"].get_text() and "(n = 17)" in texts["in_table"].get_text()
    assert "naltrexone: 12 reports, 43 patients" in texts["included"].get_text()


# --- clinical -----------------------------------------------------------------------------------------------


def test_time_to_response_rows_arrows_and_reason_labels(s):
    entries = s["durability"]["time_to_response"]
    parsed = [t for t in entries if t["status"] == "parsed"]
    bounds = [t for t in parsed if t["kind"] == "upper bound"]
    firsts = [t for t in parsed if t["kind"] == "first improvement"]
    figure = clinical.time_to_response(s)
    first_ax, bound_ax = figure.axes[0], next(ax for ax in figure.axes[1:] if ax.get_xlabel())
    arrows = [a for a in by_gid(figure, "bound:") if isinstance(a, Annotation)]
    assert len(arrows) == len(bounds) == 8
    for arrow in arrows:  # pointing left from the bound
        assert arrow.xy[0] < arrow.xyann[0]
    assert len(by_gid(figure, "range:")) == sum(t["shape"] == "range" for t in firsts) == 3
    assert len(by_gid(figure, "point:")) == sum(t["shape"] == "point" for t in firsts) == 2
    rows = tick_labels(first_ax) + tick_labels(bound_ax)
    assert len(rows) == len(parsed) and "JasansBarcelo2020 (7 patients)" in rows
    reasons = " ".join(right_tick_labels(bound_ax))
    for label in ("by (assessment)", "by (clearing)", "by (first visit)", "within"):
        assert label in reasons
    assert all(ax.get_xscale() == "linear" for ax in (first_ax, bound_ax))  # < 2 decades each
    assert all(ax.get_xlabel().startswith("days from starting naltrexone") for ax in (first_ax, bound_ax))
    title = figure.get_suptitle()
    assert "stated for 5 patients" in title and "upper bound only for 14" in title and "no time stated for 17" in title


def test_time_to_response_uses_a_log_axis_when_times_span_more_than_two_decades(s):
    wide = copy.deepcopy(s)
    entry = next(t for t in wide["durability"]["time_to_response"] if t.get("patient_id") == "P1"
                 and t["report_id"] == "Grolleau2020")
    entry.update(days=[1, 1], stated_days=[1, 1])
    extra = {**entry, "patient_id": "P9", "days": [400, 400], "stated_days": [400, 400]}
    wide["durability"]["time_to_response"].append(extra)
    figure = clinical.time_to_response(wide)
    assert figure.axes[0].get_xscale() == "log"


# --- design -------------------------------------------------------------------------------------------------


def test_operating_characteristics_with_the_benchmark_and_false_success_rates(s):
    block = s["design"]["single_arm"]
    figure = design.operating(s)
    ax = figure.axes[0]
    assert lines_at(ax, block["benchmark"], axis="x")
    assert len(by_gid(figure, "oc:")) == len(block["sizes"])
    for size, rate in block["false_success"].items():
        dot = by_gid(figure, f"false_success:{size}")[0]
        assert dot.get_xdata()[0] == block["benchmark"] and dot.get_ydata()[0] == pytest.approx(rate)
    assert ax.get_xlabel() and ax.get_ylabel() == "probability of success"


def test_assurance_by_size_and_by_benchmark_for_every_design_prior(s):
    block = s["design"]["single_arm"]
    figure = design.assurance(s)
    left, right = figure.axes[0], figure.axes[1]
    priors = list(block["assurance"])
    assert len(by_gid(figure, "assurance:")) == len(by_gid(figure, "benchmark:")) == len(priors) == 5
    line = by_gid(figure, "assurance:omega averaged")[0]
    assert list(line.get_ydata()) == [block["assurance"]["omega averaged"][k]
                                      for k in sorted(block["assurance"]["omega averaged"], key=int)]
    assert tick_labels(left, "x") == [str(n) for n in block["sizes"]]  # integer sizes
    assert left.get_xlabel() == "patients in the new study, n" and right.get_xlabel()
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[0].startswith("no selection") and legend[-1].startswith("ω averaged")


# --- clinician ----------------------------------------------------------------------------------------------


def test_icon_array_counts_100_patients_per_panel(s):
    figure = clinician.icon_array(s)
    expected = {"unadjusted": round(100 * s["predictive"]["mean"]),
                "bias_adjusted": round(100 * s["bias"]["averaged"]["predictive"]["mean"])}
    assert expected == {"unadjusted": 87, "bias_adjusted": 65}
    for panel, count in expected.items():
        responders = by_gid(figure, f"icon:{panel}:responder:body")
        others = by_gid(figure, f"icon:{panel}:other:body")
        assert (len(responders), len(others)) == (count, 100 - count)
        assert by_gid(figure, f"count:{panel}")[0].get_text() == f"{count} of 100 respond"
    assert figure.get_size_inches()[0] <= 210 / 25.4 / 2  # half an A4 page
    # colour-blind safe and apart in grey print: luminance of the two fills
    from matplotlib.colors import to_rgb

    def luminance(colour):
        r, g, b = to_rgb(colour)
        return 0.299 * r + 0.587 * g + 0.114 * b

    assert luminance(clinician.OTHER) - luminance(clinician.RESPONDER) > 0.4
    assert clinician.per_hundred(0.865) == 87 and clinician.per_hundred(0.864) == 86


# --- diagnostics ---------------------------------------------------------------------------------------

REPORTS = ["Albers2017", "Ibrahim2017", "Cao2018", "Kollman2018", "GarayarCantero2019", "Sonthalia2019",
           "Moulin2019", "JasansBarcelo2020", "McBride2020", "Grolleau2020", "Gavali2024", "Series14_Menta2024x"]
Y = np.array([3, 3, 3, 1, 1, 1, 3, 7, 1, 2, 3, 8])
N = np.array([3, 3, 3, 1, 1, 1, 3, 8, 1, 2, 3, 14])
LABELS = {"mu": "μ (pooled mean)", "u": "u = κ$^{-1/2}$", "heterogeneity_sd": "SD(θ)"}
BOUNDS = {"mu": (0.0, 1.0), "u": (0.0, np.inf), "heterogeneity_sd": (0.0, 0.5)}
CHAINS, DRAWS = 4, 300
DIVERGENT = 3


def log_beta_binomial(y, n, a, b):
    return special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1) \
        + special.betaln(y + a, n - y + b) - special.betaln(a, b)


@pytest.fixture(scope="module")
def run() -> xr.DataTree:
    """The primary model's posterior by sampling-importance-resampling from its prior (exact, independent
    chains), with the groups the diagnostics read, an AR(1) energy and a few divergences."""
    rng = np.random.default_rng(7)
    size = 100_000
    mu, u = rng.uniform(size=size), np.abs(rng.normal(0, 0.5, size))
    kappa = u ** -2.0
    loglik = log_beta_binomial(Y, N, (mu * kappa)[:, None], ((1 - mu) * kappa)[:, None])
    weights = np.exp(loglik.sum(axis=1) - loglik.sum(axis=1).max())
    index = rng.choice(size, CHAINS * DRAWS, p=weights / weights.sum())
    shape = (CHAINS, DRAWS)
    mu_p, u_p, kappa_p = (x[index].reshape(shape) for x in (mu, u, kappa))
    a, b = mu_p * kappa_p, (1 - mu_p) * kappa_p
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), "report": REPORTS}
    sample = ("chain", "draw")

    def sd(m, k):
        return np.sqrt(m * (1 - m) / (k + 1))

    posterior = xr.Dataset({"mu": (sample, mu_p), "u": (sample, u_p),
                            "theta": ((*sample, "report"), rng.beta(a[..., None] + Y, b[..., None] + N - Y)),
                            "heterogeneity_sd": (sample, sd(mu_p, kappa_p))}, coords=coords)
    prior_mu, prior_u = rng.uniform(size=(1, 1000)), np.abs(rng.normal(0, 0.5, (1, 1000)))
    prior = xr.Dataset({"mu": (sample, prior_mu), "u": (sample, prior_u),
                        "heterogeneity_sd": (sample, sd(prior_mu, prior_u ** -2.0))},
                       coords={"chain": [0], "draw": np.arange(1000)})
    energy = np.empty(shape)
    energy[:, 0] = rng.normal(size=CHAINS)
    for t in range(1, DRAWS):
        energy[:, t] = 0.5 * energy[:, t - 1] + rng.normal(size=CHAINS)
    diverging = np.zeros(shape, dtype=bool)
    diverging[0, [50, 200]] = diverging[2, 250] = True
    new_reports = rng.binomial(N, rng.beta(a[..., None], b[..., None]))
    return xr.DataTree.from_dict({
        "posterior": posterior,
        "prior": prior,
        "sample_stats": xr.Dataset({"energy": (sample, energy + 20), "diverging": (sample, diverging)},
                                   coords={"chain": coords["chain"], "draw": coords["draw"]}),
        "log_likelihood": xr.Dataset({"y": ((*sample, "report"), log_beta_binomial(Y, N, a[..., None],
                                                                                   b[..., None]))}, coords=coords),
        "log_prior": xr.Dataset({"mu": (sample, np.zeros(shape)),
                                 "u": (sample, stats.halfnorm.logpdf(u_p, scale=0.5))}, coords=coords),
        "posterior_predictive": xr.Dataset({"y": ((*sample, "report"), new_reports)}, coords=coords),
        "observed_data": xr.Dataset({"y": (("report",), Y)}, coords={"report": REPORTS}),
    })


@pytest.fixture(scope="module")
def elpd(run):
    tree = xr.DataTree.from_dict({name: run[name].to_dataset() for name in
                                  ("log_likelihood", "posterior_predictive", "observed_data")}
                                 | {"posterior": run["posterior"].to_dataset()[["mu"]]})
    return arviz_stats.loo(tree, pointwise=True)


@pytest.fixture
def spy(monkeypatch):
    """Record every call of the named arviz-plots functions and the PlotCollection each returned."""
    calls: dict[str, list] = {}

    def install(*names):
        for name in names:
            original = getattr(azp, name)

            def wrapper(*args, _original=original, _name=name, **kwargs):
                pc = _original(*args, **kwargs)
                calls.setdefault(_name, []).append((args, kwargs, pc))
                return pc

            monkeypatch.setattr(azp, name, wrapper)
        return calls

    return install


def drawn_by(calls, name: str, figure):
    assert len(calls.get(name, [])) == 1, f"{name} not called once by arviz-plots: {list(calls)}"
    args, kwargs, pc = calls[name][0]
    assert pc.viz["figure"].item() is figure
    return args, kwargs, pc


def test_diagnostics_thresholds_are_the_usual_ones():
    assert af.THRESHOLDS == {"pareto_k_good": 0.5, "pareto_k_bad": 0.7, "e_bfmi": 0.3, "band_prob": 0.95,
                             "test_alpha": 0.01}
    assert af.WIDTH == style.WIDTH and af.STYLE is style.STYLE


def test_diagnostics_trace_is_arviz_with_labels_chains_divergences_and_bounds(run, spy):
    calls = spy("plot_trace_dist")
    figure = af.plot_trace(run, ["mu", "u"], LABELS, bounds=BOUNDS)
    _, kwargs, pc = drawn_by(calls, "plot_trace_dist", figure)
    assert kwargs["compact"] is False and figure.get_size_inches()[0] == pytest.approx(style.WIDTH)
    labels = [ax.get_xlabel() for ax in figure.axes] + [ax.get_ylabel() for ax in figure.axes]
    assert LABELS["mu"] in labels and LABELS["u"] in labels
    assert [t.get_text() for t in pc.viz["legend"]["chain"].item().get_texts()] == ["0", "1", "2", "3"]
    for visual in ("divergence_dist", "divergence_trace"):
        marks = [artist for artist in np.asarray(pc.viz[visual]["mu"].values).ravel() if artist is not None]
        assert sum(len(m.get_offsets()) for m in marks) == DIVERGENT
    for line in pc.viz["dist"]["mu"].values:
        assert np.max(line.get_xdata()) <= 1.0


def test_diagnostics_rank_prints_the_rank_test_and_flags_a_shifted_chain(run, spy):
    calls = spy("plot_rank")
    figure = af.plot_rank(run, ["mu", "u"], LABELS)
    _, kwargs, _ = drawn_by(calls, "plot_rank", figure)
    assert kwargs["envelope_prob"] == pytest.approx(1 - af.THRESHOLDS["test_alpha"])
    panels = [ax for ax in figure.axes if ax.axison]
    p_values = af.rank_test(run, ["mu", "u"])
    shown = sorted(t.get_text() for ax in panels for t in ax.texts if t.get_text().startswith("p = "))
    assert shown == sorted(f"p = {p:.2f} (α = 0.01)" for p in p_values.values())
    shifted = run.copy()
    mu = run["posterior"]["mu"].copy()
    mu[0] = mu[0] + 0.05
    shifted["posterior"] = run["posterior"].to_dataset().assign(mu=mu)
    assert af.rank_test(shifted, ["mu"])["mu"] < 0.001 < af.rank_test(run, ["mu"])["mu"]


def test_diagnostics_energy_has_the_bfmi_line_and_integer_chain_ticks(run, spy):
    calls = spy("plot_energy")
    figure = af.plot_energy(run)
    drawn_by(calls, "plot_energy", figure)
    bfmi_ax = next(ax for ax in figure.axes if ax.get_ylabel() == "chain")
    assert lines_at(bfmi_ax, af.THRESHOLDS["e_bfmi"], axis="x")
    assert tick_labels(bfmi_ax) == [str(c) for c in range(CHAINS)]


def test_diagnostics_khat_lines_and_report_names(elpd, spy):
    calls = spy("plot_khat")
    figure = af.plot_khat(elpd)
    drawn_by(calls, "plot_khat", figure)
    ax = figure.axes[0]
    assert lines_at(ax, 0.5) and lines_at(ax, 0.7)
    assert lines_at(ax, 0.7)[0].get_linestyle() == "-" and lines_at(ax, 0.5)[0].get_linestyle() == "--"
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == REPORTS
    assert not clipped(figure)


def test_diagnostics_loo_pit_prior_posterior_psense_and_sbc_draw(run, spy, tmp_path):
    pit = np.random.default_rng(1).uniform(size=len(REPORTS))
    calls = spy("plot_ecdf_pit", "plot_prior_posterior", "plot_psense_dist")
    drawn = {
        "loo_pit": af.plot_loo_pit(pit),
        "prior_posterior": af.plot_prior_posterior(run, ["mu", "u"], LABELS, BOUNDS),
        "psense": af.plot_psense_dist(run, ["mu"], LABELS, bounds=BOUNDS),
        "sbc": af.plot_ecdf_pit_sbc(xr.Dataset({"mu": (("sample",), pit)}), labels={"mu": "μ"}),
    }
    assert len(calls["plot_ecdf_pit"]) == 2 and calls["plot_prior_posterior"] and calls["plot_psense_dist"]
    assert "95% band" in drawn["loo_pit"].axes[0].get_title(loc="left")
    for name, figure in drawn.items():
        assert figure.get_layout_engine() is not None, name
        files = figures.save(figure, tmp_path, name)
        assert files[0].stat().st_size > 10_000, name


def test_arviz_figures_go_to_one_worker_and_the_other_never_imports_arviz(s, run, tmp_path):
    """Jobs that draw with ArviZ all go to the first worker; the others share both workers, and the one
    that draws no ArviZ figure never imports arviz-plots or arviz-stats (which bring scipy.stats and jax
    along: about 2 s of CPU a process). A drawing submitted early (`submit`) and one submitted later are
    collected together, in job order."""
    figures.shutdown()
    plotted = xr.DataTree.from_dict({g: run[g].to_dataset()[["mu", "u"]] for g in ("posterior", "prior")}
                                    | {"sample_stats": run["sample_stats"].to_dataset()})
    names = ["mu", "u"]
    labels = {n: LABELS[n] for n in names}
    arviz_jobs = [figures.Job("trace", af.plot_trace, (plotted, names, labels)),
                  figures.Job("rank", af.plot_rank, (plotted, names, labels))]
    plain_jobs = [j for j in figure_jobs(s) if j.name in ("forest", "tipping", "icon_array", "risk_of_bias")]
    try:
        early = figures.submit(arviz_jobs, tmp_path)
        drawn = figures.collect(early, figures.submit(plain_jobs, tmp_path))
    finally:
        figures.shutdown()
    assert [d.name for d in drawn] == [j.name for j in arviz_jobs + plain_jobs]
    arviz_pids = {d.pid for d in drawn[:2]}
    assert len(arviz_pids) == 1, "the ArviZ figures were drawn by two processes"
    others = [d for d in drawn[2:] if d.pid not in arviz_pids]
    assert others, "no figure was drawn by the second worker"
    for d in others:
        for name in ("arviz_plots", "arviz_stats", "arviz_base", "jax"):
            assert name not in d.modules, f"the worker that drew no ArviZ figure loaded {name}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{j.name}.png" for j in arviz_jobs + plain_jobs)


def test_a_worker_never_creates_the_folder_above_its_figures(s, tmp_path):
    """A run's folder that is removed (a failed run) while a figure is still being drawn stays removed:
    the worker creates the figures folder at most, never its parents, and the figure fails instead."""
    missing = tmp_path / "gone" / "figures"
    with pytest.raises(figures.FigureError, match="forest"):
        figures.draw_job(figures.Job("forest", meta.forest, (s,)), missing)
    assert not (tmp_path / "gone").exists()
