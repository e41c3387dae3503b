# The two commands of the README: `make analysis` and `make test`. Both set up .venv first.
PY := .venv/bin/python
ARGS ?=

.PHONY: setup analysis test test-slow validate benchmark
setup:  ## .venv, then the default command's sampler programs (once per version of the sources: scripts/prepare.sh)
	@scripts/bootstrap.sh
	@scripts/prepare.sh

analysis: setup  ## the primary analysis (pass options as ARGS="--config analysis/configs/logit_normal.toml")
	$(PY) -m analysis.fit $(ARGS)

test: setup  ## the default test suite (fast statistical checks included)
	$(PY) -m pytest $(ARGS)

test-slow: setup  ## long reference runs, the full sensitivity sweep, the full calibration, the warm process's other paths
	$(PY) -m pytest -m slow $(ARGS)

validate: setup  ## simulation-based calibration, 200 simulations per check (reports/validation/)
	$(PY) -m analysis.validate $(ARGS)

benchmark: setup  ## print timings of the commands on this machine
	$(PY) benchmarks/run.py $(ARGS)
