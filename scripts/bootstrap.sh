#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install the project into it (editable, with test extras).
# PyMC 6 / ArviZ 1 need Python 3.12+: on 3.11 pip would silently install the old, incompatible
# stack, so this script refuses any older interpreter instead of falling back to it.
set -euo pipefail
cd "$(dirname "$0")/.."

is_py312() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
    local cand v root
    # Prefer 3.12, the version the stack was measured on, then newer ones.
    for cand in "${PYTHON:-}" python3.12 python3.13 python3.14 python3; do
        [ -n "$cand" ] && is_py312 "$cand" && { command -v "$cand"; return; }
    done
    # pyenv keeps interpreters that are installed but not on PATH.
    if command -v pyenv >/dev/null 2>&1; then
        root=$(pyenv root)
        for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])(\.[0-9]+)?$' | sort -V); do
            is_py312 "$root/versions/$v/bin/python" && { echo "$root/versions/$v/bin/python"; return; }
        done
    fi
    return 1
}

stamp=.venv/.installed
if [ -x .venv/bin/python ] && is_py312 .venv/bin/python && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    exit 0
fi
py=$(find_python) || { echo "error: Python 3.12 or newer is needed (PyMC 6); set PYTHON=/path/to/python3.12" >&2; exit 1; }
echo "Setting up .venv with $py ($("$py" --version))" >&2
[ -x .venv/bin/python ] && is_py312 .venv/bin/python || { rm -rf .venv; "$py" -m venv .venv; }
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
touch "$stamp"
