//! Restore time without the memory-tracking allocator of the `scale` bench
//! (which counts every allocation and so slows a restore, made of about a
//! dozen allocations per store, by a large factor): a KEY population of 1k
//! and 100k (and 1M with `SHOPAUTH_BENCH_1M=1`) stores is snapshotted, then restored
//! into fresh engines through Rust and through the C ABI; the median of 3.
//!
//! SHOPAUTH_BENCH_1M=1 cargo bench --bench restore

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

fn key_engine(n: usize) -> shopauth::Engine {
    let mut e = engine();
    for i in 0..n {
        let id = store_id(i);
        e.handle_ms(register(&id, "mykey"), T0).expect("register");
        e.handle_ms(
            input(json!({"type": "authorize", "client_id": "c1", "store_id": id, "auth_type": "KEY",
                         "seller_id": format!("seller-{i:08}"), "auth_info": {"token": token(i, 0)}})),
            T0,
        )
        .expect("authorize");
        drain(&mut e);
    }
    e
}

fn median(mut f: impl FnMut() -> Duration) -> f64 {
    let mut v: Vec<f64> = (0..3).map(|_| f().as_secs_f64()).collect();
    v.sort_by(f64::total_cmp);
    v[1]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut sizes = vec![1_000, 100_000];
    if std::env::var("SHOPAUTH_BENCH_1M").is_ok() {
        sizes.push(1_000_000);
    }
    println!(
        "{:>6} {:>12} {:>10} {:>10} {:>14} {:>14}",
        "N", "bytes", "snapshot s", "restore s", "C ABI restore s", "C ABI us/store"
    );
    for n in sizes {
        let e = key_engine(n);
        let snap = e.snapshot();
        let snap_s = median(|| {
            let t = Instant::now();
            std::hint::black_box(e.snapshot());
            t.elapsed()
        });
        drop(e);
        let restore_s = median(|| {
            let mut fresh = engine();
            let t = Instant::now();
            fresh.restore(&snap).expect("restore");
            let d = t.elapsed();
            drop(fresh);
            d
        });
        let ffi_s = median(|| ffi_restore(&snap));
        println!(
            "{:>6} {:>12} {:>10.3} {:>10.3} {:>14.3} {:>14.2}",
            label(n),
            snap.len(),
            snap_s,
            restore_s,
            ffi_s,
            ffi_s * 1e6 / n as f64
        );
    }
}
