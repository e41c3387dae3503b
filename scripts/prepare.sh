#!/usr/bin/env bash
# Build the sampler and density programs the default command needs, once for these sources and packages, so
# that a new machine's first `make analysis` loads them instead of compiling them. It runs the default command
# (with the sweep, whose structures are needed too) into a throwaway folder; the programs stay in the tool's
# cache (`HHD_CACHE_DIR`, else ~/.cache/hhd-opioid-antagonists) beside a stamp naming what they were built for.
# The stamp lives in the cache, so deleting the cache brings the step back. HHD_PREPARE=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

[ "${HHD_PREPARE:-1}" = 0 ] && exit 0

# What the programs depend on: the models, the engine, the configs and data (their sizes), the packages.
key=$( { cat models/*.py analysis/engine/*.py analysis/configs/*.toml data/*.csv
         "$py" -c 'import sys; from importlib.metadata import version
print(sys.version, *(version(p) for p in ("jax", "jaxlib", "blackjax", "pymc", "pytensor", "numpy")))'
       } | sha256sum | cut -c1-16 )
cache=$("$py" -c 'from analysis.engine.cache import cache_dir; print(cache_dir())')
stamp="$cache/prepared-$key"
[ -f "$stamp" ] && exit 0

echo "preparing the sampler programs (first time only, about 2 min on 2 idle cores, up to 8 on a busy machine)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$SECONDS
status=0
"$py" -m analysis.fit --out "$work/warm" >"$work/log" 2>&1 || status=$?
case $status in
    0|1)  # 1: the convergence gate failed; the programs were built all the same
        mkdir -p "$cache"
        rm -f "$cache"/prepared-*
        touch "$stamp"
        echo "sampler programs ready in $((SECONDS - started)) s ($cache)" >&2 ;;
    130|143)
        exit "$status" ;;
    *)
        echo "warning: preparing the sampler programs failed (exit $status); the first analysis will build them:" >&2
        tail -n 5 "$work/log" >&2 ;;
esac
