"""Compiled programs survive the process: where they live, that a damaged entry is rebuilt rather than
trusted, and that a cold and a warm cache give the same numbers byte for byte."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from analysis.engine import programs
from analysis.engine.cache import CACHE_ENV, cache_dir
from analysis.engine.fitting import fit
from analysis.inputs.config import CONFIG_DIR, PROJECT_ROOT, load_config
from models.base import Reports
from models.families import model_spec
from models.priors import BetaBinomialPrior

CONFIG = load_config(sampling={"draws": 100, "tune": 100})
SPEC = model_spec("beta_binomial", Reports(np.array([1, 3, 2]), np.array([1, 4, 2])), BetaBinomialPrior())
POINTS = np.random.default_rng(3).normal(0.0, 1.0, (7, 2))


def test_the_cache_lives_where_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hhd-opioid-antagonists"


def _run(cache: programs.ModelCache, kind: str) -> np.ndarray:
    """What the program of `kind` computes: the sampler's draws of μ, or the density at fixed points."""
    if kind == "sampler":
        return fit(cache, SPEC, CONFIG.sampling, 4, CONFIG.diagnostics).posterior["mu"].values
    return cache.density(SPEC).evaluate(SPEC.values, POINTS)[0]


@pytest.mark.parametrize("kind", ["density", pytest.param("sampler", marks=pytest.mark.slow)])
def test_a_damaged_saved_program_is_rebuilt_not_trusted(monkeypatch, tmp_path, kind):
    """Truncated, garbage or mismatched files: the next process builds the program again (one
    compilation) and computes exactly what the intact program computed."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    first = programs.ModelCache()
    reference = _run(first, kind)
    assert first.compilations == 1
    [blob] = (tmp_path / "programs").glob("*.jaxexport")
    meta = blob.with_suffix(".json")
    assert meta.is_file()

    reloaded = programs.ModelCache()
    np.testing.assert_array_equal(_run(reloaded, kind), reference)
    assert reloaded.compilations == 0  # loaded, not built

    for damage in (lambda: blob.write_bytes(blob.read_bytes()[:100]), lambda: blob.write_bytes(b"not a program"),
                   lambda: meta.write_text("{"), lambda: meta.write_text(json.dumps({"key": "another"}))):
        damage()
        rebuilt = programs.ModelCache()
        np.testing.assert_array_equal(_run(rebuilt, kind), reference)
        assert rebuilt.compilations == 1


@pytest.mark.slow
def test_a_cold_and_a_warm_cache_write_the_same_summary_byte_for_byte(tmp_path):
    """Two fresh processes, the first with an empty cache (it traces, compiles and saves every program),
    the second loading what the first saved: identical summary.json."""
    config = tmp_path / "light.toml"
    config.write_text(f'extends = "{CONFIG_DIR / "default.toml"}"\n[graded]\nenabled = false\n'
                      "[cumulative]\nenabled = false\n")
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    summaries, compilations = [], []
    for name in ("cold", "warm"):
        run = subprocess.run([sys.executable, "-m", "analysis.fit", "--config", str(config), "--out",
                              str(tmp_path / name), "--no-sensitivity"], capture_output=True, text=True,
                             cwd=PROJECT_ROOT, timeout=3600, env=env)
        assert run.returncode == 0, run.stderr
        summaries.append((tmp_path / name / "summary.json").read_bytes())
        compilations.append(json.loads((tmp_path / name / "run.json").read_text())["compilations"])
    assert compilations[0] > 0 and compilations[1] == 0
    assert summaries[0] == summaries[1]
