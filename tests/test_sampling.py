"""The sampler's programs survive the process: where they live, that a damaged entry is rebuilt rather
than trusted, and that a cold and a warm cache give the same numbers byte for byte."""

import json
import os
import subprocess
import sys

import numpy as np

from analysis import sampling
from analysis.config import CONFIG_DIR, PROJECT_ROOT, load_config
from models import Reports, model_spec
from models.priors import BetaBinomialPrior

SETTINGS = load_config(sampling={"draws": 100, "tune": 100}).sampling
SPEC = model_spec("beta_binomial", Reports(np.array([1, 3, 2]), np.array([1, 4, 2])), BetaBinomialPrior())


def test_the_cache_lives_where_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.setenv(sampling.CACHE_ENV, str(tmp_path / "mine"))
    assert sampling.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(sampling.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sampling.cache_dir() == tmp_path / "xdg" / "hhd-opioid-antagonists"


def test_a_damaged_saved_program_is_rebuilt_not_trusted(monkeypatch, tmp_path):
    """Truncated, garbage or mismatched files: the next process builds the program again (one
    compilation) and samples exactly what the intact program sampled."""
    monkeypatch.setenv(sampling.CACHE_ENV, str(tmp_path))
    first = sampling.ModelCache()
    reference = first.sample(SPEC, SETTINGS, seed=4)["posterior"]["mu"].values
    assert first.compilations == 1
    blob, meta = sampling._paths(sampling.program_key(SPEC, SETTINGS))
    assert blob.is_file() and meta.is_file()

    reloaded = sampling.ModelCache()
    np.testing.assert_array_equal(reloaded.sample(SPEC, SETTINGS, seed=4)["posterior"]["mu"].values, reference)
    assert reloaded.compilations == 0  # loaded, not built

    for damage in (lambda: blob.write_bytes(blob.read_bytes()[:100]), lambda: blob.write_bytes(b"not a program"),
                   lambda: meta.write_text("{"), lambda: meta.write_text(json.dumps({"key": "another"}))):
        damage()
        rebuilt = sampling.ModelCache()
        np.testing.assert_array_equal(rebuilt.sample(SPEC, SETTINGS, seed=4)["posterior"]["mu"].values, reference)
        assert rebuilt.compilations == 1


def test_a_cold_and_a_warm_cache_write_the_same_summary_byte_for_byte(tmp_path):
    """Two fresh processes, the first with an empty cache (it traces, compiles and saves every program),
    the second loading what the first saved: identical summary.json."""
    config = tmp_path / "light.toml"
    config.write_text(f'extends = "{CONFIG_DIR / "default.toml"}"\n[graded]\nenabled = false\n'
                      "[cumulative]\nenabled = false\n")
    env = {**os.environ, "HHD_CACHE_DIR": str(tmp_path / "cache")}
    summaries = []
    for name in ("cold", "warm"):
        run = subprocess.run([sys.executable, "-m", "analysis.fit", "--config", str(config), "--out",
                              str(tmp_path / name), "--no-sensitivity"], capture_output=True, text=True,
                             cwd=PROJECT_ROOT, timeout=600, env=env)
        assert run.returncode == 0, run.stderr
        summaries.append((tmp_path / name / "summary.json").read_bytes())
        compilations = json.loads((tmp_path / name / "run.json").read_text())["compilations"]
        assert compilations == (1 if name == "cold" else 0)
    assert summaries[0] == summaries[1]
