//! Raw bytes into `shopauth_engine_handle`, on an engine that already has a
//! store in most states. The input is split at 0xFF bytes (never part of
//! UTF-8) into up to 16 inputs, handled one after another, one second
//! apart; each reply and output is checked (see the crate docs), a refused
//! input must change nothing, and the final state must snapshot and restore.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shopauth_fuzz::{Engine, defuse, prelude};

fuzz_target!(|data: &[u8]| {
    let data = defuse(data);
    let (mut engine, mut now) = prelude();
    for part in data.split(|&b| b == 0xFF).take(16) {
        now += 1000;
        engine.handle(part, now);
        engine.drain();
    }
    engine.handle_timeout(now + 40 * 86_400_000);
    engine.drain();
    let snap = engine.snapshot();
    let mut fresh = Engine::fresh();
    let (status, err) = fresh.restore(snap.as_bytes());
    assert_eq!(
        status,
        shopauth::ffi::shopauth_status::SHOPAUTH_OK,
        "own snapshot refused: {err:?}"
    );
});
