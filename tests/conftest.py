import sys
from pathlib import Path

import pytest

from analysis.config import PROJECT_ROOT

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
def primary_run(tmp_path_factory, model_cache):
    """The default command, run once in-process for every test that reads its outputs."""
    from analysis import fit

    out = tmp_path_factory.mktemp("primary") / "default"
    code = fit.main(["--out", str(out)], cache=model_cache)
    return code, out
