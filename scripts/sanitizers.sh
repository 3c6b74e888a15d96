#!/usr/bin/env bash
# Runs the C and C++ programs (tests/c/abi_test.c, tests/c/cpp_test.cpp,
# examples/c_host.c) against the static library:
#   1. under valgrind (memcheck, --leak-check=full, any error fails);
#   2. in a separate build with gcc's -fsanitize=address,undefined
#      (leak detection on, every UBSan finding fatal).
# The Rust library itself is the normal, uninstrumented static library;
# the sanitizers check the C side and every allocation crossing the boundary
# (strings handed out must be freed exactly once with shopauth_string_free).
#
# Usage: scripts/sanitizers.sh            (debug library, `cargo build`)
#        PROFILE=release scripts/sanitizers.sh
# Exits non-zero on any compile error, test failure or sanitizer report.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

PROFILE="${PROFILE:-debug}"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
# Each program run is bounded; valgrind makes the 16 MiB inputs slow.
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"

for tool in "$CC" "$CXX" valgrind timeout; do
    command -v "$tool" >/dev/null || { echo "sanitizers.sh: $tool not found" >&2; exit 1; }
done

if [[ "$PROFILE" == release ]]; then
    cargo build --release --lib
else
    cargo build --lib
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
lib="$target_dir/$PROFILE/libshopauth.a"
[[ -f "$lib" ]] || { echo "sanitizers.sh: $lib is missing" >&2; exit 1; }
[[ -f include/shopauth.h ]] || { echo "sanitizers.sh: include/shopauth.h is missing" >&2; exit 1; }

out="$target_dir/sanitizers"
rm -rf "$out"
mkdir -p "$out/valgrind" "$out/asan"

native=(-lpthread -ldl -lm)
cflags=(-std=c11 -pthread -Wall -Wextra -Werror -g -Iinclude)
cxxflags=(-std=c++17 -pthread -Wall -Wextra -Werror -g -Iinclude -Ibindings/cpp)

build() { # dir extra-flags...
    local dir="$1"; shift
    echo "== building into $dir ($*)"
    "$CC" "${cflags[@]}" "$@" tests/c/abi_test.c "$lib" "${native[@]}" -o "$dir/abi_test"
    "$CC" "${cflags[@]}" "$@" examples/c_host.c "$lib" "${native[@]}" -o "$dir/c_host"
    "$CXX" "${cxxflags[@]}" "$@" tests/c/cpp_test.cpp "$lib" "${native[@]}" -o "$dir/cpp_test"
}

failed=0
run() { # label command...
    local label="$1"; shift
    local log="$out/$label.log"
    local start=$SECONDS
    if timeout "$RUN_TIMEOUT" "$@" >"$log" 2>&1; then
        echo "ok    $label ($((SECONDS - start)) s)"
    else
        local rc=$?
        echo "FAIL  $label (exit $rc, $((SECONDS - start)) s); last lines of $log:"
        tail -n 60 "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

programs=(abi_test cpp_test c_host)

# 1. valgrind
build "$out/valgrind" -O0
for p in "${programs[@]}"; do
    run "valgrind-$p" valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
        --show-leak-kinds=definite,indirect,possible --track-origins=yes --num-callers=30 "$out/valgrind/$p"
done

# 2. AddressSanitizer + UndefinedBehaviorSanitizer (a separate build)
build "$out/asan" -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
for p in "${programs[@]}"; do
    run "asan-$p" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/asan/$p"
done

total=$(( ${#programs[@]} * 2 ))
echo "sanitizers: $((total - failed)) passed, $failed failed"
[[ $failed -eq 0 ]]
