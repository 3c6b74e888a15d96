#!/usr/bin/env bash
# End-to-end test of the example Python service (examples/python_service):
# starts the platform simulator and the service on 127.0.0.1, drives sellers
# through authorization with real HTTP, kills the service with SIGKILL and
# restarts it on the same SQLite database.
#
#   bash examples/python_service/run_tests.sh [pytest args]
#
# Uses the binding's virtualenv (target/pyenv, made by
# bindings/python/run_tests.sh). When it is missing, or lacks shopauth or
# pytest, creates it and installs `./bindings/python` (builds the Rust
# library) and the binding's pinned test tools. Environment (all optional): PYTHON (interpreter
# for a new venv, default python3), SHOPAUTH_PYENV (venv path, default
# target/pyenv), SHOPAUTH_REINSTALL=1 (pip install ./bindings/python again,
# e.g. after changing the crate), E2E_TIMEOUT_S (hard limit, default 1200), SHOPAUTH_PG_DSN (a
# running PostgreSQL for the fleet tests; else conftest.py starts a throw-away
# one with scripts/pg.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${SHOPAUTH_PYENV:-$root/target/pyenv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"

if ! "$py" -c 'import pytest' 2>/dev/null; then
  echo "== installing the binding's pinned test tools"
  "$py" -m pip install --quiet -r "$root/bindings/python/requirements-test.txt"
fi
if [ "${SHOPAUTH_REINSTALL:-0}" = 1 ] || ! "$py" -c 'import shopauth' 2>/dev/null; then
  echo "== pip install ./bindings/python (builds the Rust library with maturin)"
  (cd "$root" && "$py" -m pip install --quiet ./bindings/python)
fi
"$py" -c 'import shopauth; print("shopauth", shopauth.__version__, "from", shopauth.__file__)'

echo "== mypy --strict: the example service, its simulator and tests, the Python benches"
"$py" -m mypy --strict --cache-dir "$root/target/pyenv-mypy-cache" "$here"/*.py "$root"/benches/fleet_bench.py "$root"/benches/python_host_bench.py

echo "== e2e: examples/python_service/test_e2e.py (SQLite) and test_fleet.py (PostgreSQL fleets)"
cd "$here"
# -p no:cacheprovider: leave nothing behind in the source tree.
exec timeout --kill-after=10 "${E2E_TIMEOUT_S:-1200}" \
  "$py" -m pytest -q -p no:cacheprovider --durations=0 test_e2e.py test_fleet.py "$@"
