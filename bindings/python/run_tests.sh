#!/usr/bin/env bash
# Builds and installs the Python binding the way a user does
# (`pip install ./bindings/python`) into a virtualenv under target/, then runs
# mypy --strict on the package and its tests, and pytest.
#
#   bash bindings/python/run_tests.sh
#
# Environment (all optional): PYTHON (interpreter for the venv, default
# python3), SHOPAUTH_PYENV (venv path, default target/pyenv),
# SHOPAUTH_HYPOTHESIS_EXAMPLES (examples per property test, default 200).
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

echo "== installing pinned test tools"
"$py" -m pip install --quiet -r "$here/requirements-test.txt"

echo "== pip install ./bindings/python (builds the Rust library with maturin)"
# pip always rebuilds and reinstalls a local directory; cargo keeps it incremental.
(cd "$root" && "$py" -m pip install --quiet ./bindings/python)
"$py" -c 'import shopauth; print("shopauth", shopauth.__version__, "from", shopauth.__file__)'

cd "$here"
echo "== mypy --strict"
# The installed package (what users get: wrapper, stubs and generated
# loader), then the tests against it.
mypy=("$py" -m mypy --strict --cache-dir "$root/target/pyenv-mypy-cache")
"${mypy[@]}" -p shopauth
"${mypy[@]}" tests

echo "== pytest"
"$py" -m pytest -q -p no:cacheprovider tests "$@"
