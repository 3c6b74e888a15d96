//! Structured sequences of inputs (register, authorize, redirects with live
//! nonces, answers to open requests, failures, time, snapshot/restore, …)
//! through the C ABI; see `shopauth_fuzz::sequence`. Every case runs twice
//! and the two transcripts must be identical (determinism, spec §8).
//! `SHOPAUTH_FUZZ_TRACE=1 cargo fuzz run sequence <file>` prints a case's
//! transcript as it runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shopauth_fuzz::sequence::{Case, Driver};

const MAX_STEPS: usize = 64;

fuzz_target!(|case: Case| {
    let first = Driver::run(&case, MAX_STEPS);
    let second = Driver::run(&case, MAX_STEPS);
    if first != second {
        let at = first
            .iter()
            .zip(&second)
            .position(|(a, b)| a != b)
            .unwrap_or(first.len().min(second.len()));
        panic!(
            "two runs of the same case differ at line {at}:\n{:?}\n{:?}",
            first.get(at),
            second.get(at)
        );
    }
});
