"""Save one analysis run: posterior (NetCDF), summaries (JSON, CSV), diagnostics and run metadata."""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

import pandas as pd

from analysis.borrowing import BorrowingResult
from analysis.outputs import atomic_directory
from analysis.report.html import write_report
from analysis.report.summary import report_table, summary_document, sweep_rows
from analysis.run import Run

PROVENANCE_COLUMNS = ("design", "source_level", "confidence", "doi", "pmid", "source_url")
VERSIONED_PACKAGES = ("pymc", "pytensor", "jax", "jaxlib", "blackjax", "arviz", "arviz-base", "arviz-stats", "numpy",
                      "pandas", "xarray")


def write_outputs(run: Run, out_dir: Path, argv, started: float, timings: dict[str, float] | None = None,
                  compilations: int = 0) -> dict:
    """Write everything into a staging directory and move it into place only when complete.

    `timings`: seconds per phase so far (run.json adds the time spent writing the outputs);
    `compilations`: sampler programs this run had to build (0 when the disk cache held them all)."""
    outputs_started = time.perf_counter()
    summary = summary_document(run)
    table, result, borrowing = run.table, run.result, run.borrowing
    reports = report_table(result)
    provenance = [c for c in PROVENANCE_COLUMNS if c in table.frame.columns]
    reports = reports.merge(table.frame[["report_id", *provenance]], on="report_id", how="left")

    with atomic_directory(Path(out_dir)) as staging:
        result.idata.to_netcdf(staging / "posterior.nc", engine="h5netcdf")
        reports.to_csv(staging / "summary.csv", index=False)
        result.convergence.table.to_csv(staging / "diagnostics.csv", index_label="quantity")
        if run.sweep is not None:
            pd.DataFrame(sweep_rows(run.sweep)).to_csv(staging / "sensitivity.csv", index=False)
        _write_json(staging / "summary.json", summary)
        _write_json(staging / "config.json", result.config.model_dump(mode="json"))
        if isinstance(borrowing, BorrowingResult):
            borrowing.joint.idata.to_netcdf(staging / f"posterior_{borrowing.target.drug}_joint.nc", engine="h5netcdf")
        if run.graded is not None:
            run.graded.idata.to_netcdf(staging / "posterior_graded.nc", engine="h5netcdf")
        write_report(staging, summary, run, _run_metadata(argv, started))
        timings = {**(timings or {}), "outputs": round(time.perf_counter() - outputs_started, 2)}
        _write_json(staging / "run.json", {**_run_metadata(argv, started, timings), "compilations": compilations})
    return summary


def _run_metadata(argv, started: float, timings: dict[str, float] | None = None) -> dict:
    """What is needed to rerun and what varies between runs (kept out of summary.json on purpose)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return {
        "command": shlex.join(["python", "-m", "analysis.fit", *args]),
        "wall_time_seconds": round(time.perf_counter() - started, 2),
        "phase_seconds": timings or {},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in VERSIONED_PACKAGES},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
