import sys
from pathlib import Path

import pytest
from hypothesis import settings

from analysis.inputs.config import PROJECT_ROOT

# Property tests draw the same examples in every run, so that a CI result can be reproduced.
settings.register_profile("reproducible", derandomize=True, database=None)
settings.load_profile("reproducible")

SHARED = PROJECT_ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).parent))  # tests/exact_posteriors.py


@pytest.fixture(scope="session")
def model_cache():
    """One compiled sampler per model structure for the whole test session: the process's own cache,
    which in-process executors (`--workers 1`) use too."""
    from analysis.engine.executors import process_cache

    return process_cache()


@pytest.fixture(scope="session")
def shared_literature() -> Path:
    path = SHARED / "literature"
    if not path.is_dir():
        pytest.skip(f"{path} is not present (the extraction lives beside the repository)")
    return path


SYNTHETIC_DATA = Path(__file__).parent / "data" / "synthetic_reports.csv"
"""Another data set: synthetic counts (not from any publication) in the shape of a user's own CSV, with no
companion files, no target arm and a condition named on the command line."""


def _shared_run(tmp_path_factory, worker_id, model_cache, name: str, argv: list[str]):
    """A command run once for every test that reads its outputs: by the first test process that needs it,
    in-process, while the other test workers wait for it (a lock in the session's shared base directory)
    and then read the same outputs."""
    from filelock import FileLock

    from analysis import fit

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    out, status = shared / name / "out", shared / name / "status"
    with FileLock(shared / f"{name}.lock"):
        if not status.exists():
            code = fit.main([*argv, "--out", str(out)], cache=model_cache)
            status.write_text(str(code))
    return int(status.read_text()), out


@pytest.fixture(scope="session")
def primary_run(tmp_path_factory, worker_id, model_cache):
    """The default command on the shipped data, with the sensitivity sweep."""
    return _shared_run(tmp_path_factory, worker_id, model_cache, "primary", [])


@pytest.fixture(scope="session")
def other_run(tmp_path_factory, worker_id, model_cache):
    """The default command on `SYNTHETIC_DATA` (no sweep)."""
    return _shared_run(tmp_path_factory, worker_id, model_cache, "other",
                       ["--data", str(SYNTHETIC_DATA), "--condition", "a synthetic condition", "--no-sensitivity"])
