import sys
from pathlib import Path

import pytest
from hypothesis import settings

from analysis.config import PROJECT_ROOT

# Property tests draw the same examples in every run, so that a CI result can be reproduced.
settings.register_profile("reproducible", derandomize=True, database=None)
settings.load_profile("reproducible")

SHARED = PROJECT_ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).parent))  # tests/exact_posteriors.py


@pytest.fixture(scope="session")
def model_cache():
    """One compiled sampler per model structure for the whole test session: the process's own cache,
    which in-process executors (`--workers 1`) use too."""
    from analysis.executors import process_cache

    return process_cache()


@pytest.fixture(scope="session")
def shared_literature() -> Path:
    path = SHARED / "literature"
    if not path.is_dir():
        pytest.skip(f"{path} is not present (the extraction lives beside the repository)")
    return path


@pytest.fixture(scope="session")
def primary_run(tmp_path_factory, worker_id, model_cache):
    """The default command, run once for every test that reads its outputs: by the first test process that
    needs it, in-process, while the other test workers wait for it (a lock in the session's shared base
    directory) and then read the same outputs."""
    from filelock import FileLock

    from analysis import fit

    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    out, status = shared / "primary" / "default", shared / "primary" / "status"
    with FileLock(shared / "primary.lock"):
        if not status.exists():
            code = fit.main(["--out", str(out)], cache=model_cache)
            status.write_text(str(code))
    return int(status.read_text()), out
