#!/usr/bin/env bash
# Fuzzes the C ABI (spec §8) with cargo-fuzz on the stable toolchain.
#
# Usage: scripts/fuzz.sh [seconds] [target...]
#   seconds  how long each target runs (default 60)
#   target   handle_bytes, restore_bytes, sequence (default: all three)
#
# Installs the pinned cargo-fuzz when it is missing, builds every target once,
# then runs each for the given time starting from the committed seeds in
# fuzz/corpus/<target>/ (read-only: new inputs go to
# fuzz/target/corpus/<target>/). A crash leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit non-zero after all
# targets ran. Reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<crash-file>
# (from inside fuzz/).
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs="${1:-60}"
shift || true
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=(handle_bytes restore_bytes sequence)
fi
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: seconds must be a number, got '$secs'" >&2; exit 2; }

if ! cargo fuzz --version 2>/dev/null | grep -q " ${CARGO_FUZZ_VERSION}\$"; then
    echo "== installing cargo-fuzz ${CARGO_FUZZ_VERSION}"
    cargo install cargo-fuzz --version "${CARGO_FUZZ_VERSION}" --locked
fi

# cargo-fuzz needs nightly flags (-Zsanitizer, …); the stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
cd "$root/fuzz"

echo "== building fuzz targets"
cargo fuzz build

failed=()
for t in "${targets[@]}"; do
    work="target/corpus/$t"
    mkdir -p "$work" "artifacts/$t"
    log="target/fuzz-$t.log"
    echo "== fuzzing $t for ${secs} s (log: fuzz/$log)"
    start=$SECONDS
    # -timeout: one input taking longer than this is a finding (a hang).
    if cargo fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 \
        -dict=dict/shopauth.dict -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -n 1 || true)"
        cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)"
        echo "ok    $t: ${runs:-?} in $((SECONDS - start)) s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) new + $(ls "corpus/$t" | wc -l) seeds"
    else
        echo "FAIL  $t after $((SECONDS - start)) s; last lines of fuzz/$log:"
        tail -n 80 "$log" | sed 's/^/    /'
        ls -1 "artifacts/$t" | sed 's/^/    artifact: /'
        failed+=("$t")
    fi
done

echo "fuzz: $(( ${#targets[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
[[ ${#failed[@]} -eq 0 ]]
