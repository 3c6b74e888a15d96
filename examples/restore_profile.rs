//! Profiling aid for `restore` (issue 10): `gen N FILE` writes the snapshot
//! of a KEY population of N stores (as `benches/restore.rs` builds it) to
//! FILE; `restore FILE [ROUNDS]` restores it into fresh engines and prints
//! the time of each round; `snapshot FILE [ROUNDS]` restores it once and
//! prints the time of each `snapshot` of the restored engine. Meant for
//! `valgrind --tool=callgrind` or `perf record` on the `restore` mode,
//! whose work is the restore alone.
//!
//! cargo run --release --example restore_profile -- gen 100000 /tmp/snap.json
//! cargo run --release --example restore_profile -- restore /tmp/snap.json 3

#[path = "../benches/support/mod.rs"]
mod support;

use serde_json::json;
use support::*;

/// Time this process has spent on a CPU (ns), which the other processes of a
/// loaded machine disturb less than the wall clock.
fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => {
            let n: usize = args[2].parse().expect("N");
            let mut e = engine();
            for i in 0..n {
                let id = store_id(i);
                e.handle_ms(register(&id, "mykey"), T0).expect("register");
                e.handle_ms(
                    input(
                        json!({"type": "authorize", "client_id": "c1", "store_id": id,
                                 "auth_type": "KEY", "seller_id": format!("seller-{i:08}"),
                                 "auth_info": {"token": token(i, 0)}}),
                    ),
                    T0,
                )
                .expect("authorize");
                drain(&mut e);
            }
            std::fs::write(&args[3], e.snapshot()).expect("write");
        }
        Some("restore") => {
            let snap = std::fs::read_to_string(&args[2]).expect("read");
            let rounds: usize = args.get(3).map_or(1, |r| r.parse().expect("ROUNDS"));
            for _ in 0..rounds {
                let mut fresh = engine();
                let (t, cpu) = (std::time::Instant::now(), on_cpu_ns());
                fresh.restore(&snap).expect("restore");
                let wall = t.elapsed().as_secs_f64();
                let cpu = (on_cpu_ns() - cpu) as f64 * 1e-9;
                println!(
                    "{wall:.3} s ({cpu:.3} s on CPU), {} stores",
                    fresh.store_count()
                );
            }
        }
        Some("snapshot") => {
            let snap = std::fs::read_to_string(&args[2]).expect("read");
            let rounds: usize = args.get(3).map_or(1, |r| r.parse().expect("ROUNDS"));
            let mut e = engine();
            e.restore(&snap).expect("restore");
            drop(snap);
            for _ in 0..rounds {
                let (t, cpu) = (std::time::Instant::now(), on_cpu_ns());
                let text = std::hint::black_box(e.snapshot());
                let wall = t.elapsed().as_secs_f64();
                let cpu = (on_cpu_ns() - cpu) as f64 * 1e-9;
                println!("{wall:.3} s ({cpu:.3} s on CPU), {} bytes", text.len());
            }
        }
        _ => eprintln!(
            "usage: restore_profile gen N FILE | restore FILE [ROUNDS] | snapshot FILE [ROUNDS]"
        ),
    }
}
