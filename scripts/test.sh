#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests (unit, scenarios,
# model-based properties, C ABI, committed header), the C and C++ programs,
# the Python binding, the example service's kill tests on SQLite and its fleet
# tests on a throw-away PostgreSQL (installed from the system's packages when
# missing), and the benches' compilation. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --all-targets -- -D warnings

step "cargo test (unit, scenarios, model, C ABI, header, C/C++ programs)"
cargo test

step "cargo test --features fault-injection (panic boundary)"
cargo test --features fault-injection --test ffi

step "benches compile"
cargo bench --no-run

step "PostgreSQL for the fleet tests (a throw-away cluster on loopback, stopped at exit)"
scripts/pg.sh install
pgdir="$(mktemp -d /tmp/shopauth-pg.XXXXXX)"
chmod 755 "$pgdir"
trap 'scripts/pg.sh stop "$pgdir/cluster"; rmdir "$pgdir" 2>/dev/null || true' EXIT
SHOPAUTH_PG_DSN="$(scripts/pg.sh start "$pgdir/cluster")"
export SHOPAUTH_PG_DSN

if [ -x bindings/python/run_tests.sh ]; then
  step "Python binding (pip install, mypy --strict, pytest)"
  bindings/python/run_tests.sh
fi

if [ -x examples/python_service/run_tests.sh ]; then
  step "Example Python service: kill-and-restart end-to-end tests, SQLite and fleets on PostgreSQL (after the binding, never beside it)"
  examples/python_service/run_tests.sh
fi

if [ -x scripts/sanitizers.sh ]; then
  step "C and C++ programs under valgrind and ASan/UBSan"
  scripts/sanitizers.sh
fi

step "all checks passed"
