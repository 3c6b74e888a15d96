//! Registry scale at 10k and 100k stores (1M with `SHOPAUTH_BENCH_1M=1`):
//!
//! - memory per store after registering and KEY-authorizing N stores (with
//!   a seller id, so each holds a seller claim and a credential claim), from
//!   the counting allocator (requested bytes, and malloc's usable bytes) and
//!   from the RSS, minus the store's own strings (client_id, store_id,
//!   seller_id, token). Claim keys (the seller key `platform\0seller` in the
//!   claim index, the 128-bit credential fingerprint in hex in the store and
//!   in the index), the platform name and the second copy of the store_id
//!   (the id index) are the engine's: counted as overhead. The same for N
//!   authorized oauth2 stores (own strings: ids, redirect_url, access and
//!   refresh tokens);
//! - `snapshot` and `restore` (into a fresh engine, after `malloc_trim`, so
//!   the restore pays for fresh pages as at a host's start-up) of the KEY
//!   population;
//! - `poll_timeout` and an idle `handle_timeout` on N authorized oauth2
//!   stores (two timers each: refresh and expiry), to show they do not
//!   grow with N;
//! - a refresh storm: N oauth2 stores authorized over one minute, so their
//!   refreshes fall due in the same minute; the host jumps from deadline to
//!   deadline (`poll_timeout` → `handle_timeout`), drains, and answers each
//!   refresh at once. Reported: engine time per released refresh (the
//!   `poll_timeout` + `handle_timeout` + drain) and per answer, which should
//!   be flat from 10k to 1M;
//! - the same storm on a rate-limited platform (`rate_limit_per_s` = N/40):
//!   all N refreshes fall due within one second, the gate spreads them over
//!   40 s; checked: no 1-second window ever holds more than the limit, and
//!   every refresh is released.
//!
//! ```text
//! cargo bench --bench scale
//! SHOPAUTH_BENCH_1M=1 cargo bench --bench scale
//! SHOPAUTH_BENCH_QUICK=1 cargo bench --bench scale    # tables only, no criterion runs
//! SHOPAUTH_BENCH_KEY_ONLY=1 …                          # the KEY population only (memory, snapshot, restore, changes)
//! ```

mod support;

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, black_box};
use serde_json::json;
use shopauth::{Engine, Output, Purpose};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use support::*;

#[global_allocator]
static ALLOC: Counting = Counting;

const MINUTE: i64 = 60_000;
/// Refresh lead (the default `timing.refresh_lead_s`) in ms.
const LEAD: i64 = 1_800_000;

fn quick() -> bool {
    std::env::var("SHOPAUTH_BENCH_QUICK").is_ok()
}

fn seller(i: usize) -> String {
    format!("seller-{i:08}")
}

/// Registers and KEY-authorizes `n` stores on `mykey`, each with a seller id.
/// Returns the engine and the bytes of the stores' own strings.
fn key_stores(n: usize) -> (Engine, u64) {
    let mut e = engine();
    let mut own = 0u64;
    for i in 0..n {
        let (id, s, t) = (store_id(i), seller(i), token(i, 0));
        own += ("c1".len() + id.len() + s.len() + t.len()) as u64;
        e.handle_ms(register(&id, "mykey"), T0).expect("register");
        e.handle_ms(
            input(
                json!({"type": "authorize", "client_id": "c1", "store_id": id, "auth_type": "KEY",
                         "seller_id": s, "auth_info": {"token": t}}),
            ),
            T0,
        )
        .expect("authorize");
        drain(&mut e);
    }
    (e, own)
}

/// Inputs per size in the persistence-by-changes table.
const DURABLE_INPUTS: usize = 2_000;

/// The engine part of a durable input (spec §10): the input, draining its
/// outputs, and `take_changes` of the one store it changed.
struct Durable {
    handle_us: f64,
    take_us: f64,
    bytes: f64,
}

fn durable(e: &mut Engine, n: usize) -> Durable {
    e.take_changes();
    let (mut handle, mut take, mut bytes) = (Duration::ZERO, Duration::ZERO, 0usize);
    for k in 0..DURABLE_INPUTS {
        // Scattered stores, each revoked then authorized again.
        let i = (k / 2).wrapping_mul(7919) % n;
        let id = store_id(i);
        let text = if k % 2 == 0 {
            json!({"type": "revoke", "client_id": "c1", "store_id": id}).to_string()
        } else {
            json!({"type": "authorize", "client_id": "c1", "store_id": id, "auth_type": "KEY",
                   "seller_id": seller(i), "auth_info": {"token": token(i, 0)}})
            .to_string()
        };
        let t = Instant::now();
        let (_, reply) = e.handle_json(&text, T0);
        black_box(reply);
        black_box(e.drain_outputs_json());
        handle += t.elapsed();
        let t = Instant::now();
        let c = e.take_changes();
        take += t.elapsed();
        bytes += c.len();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / DURABLE_INPUTS as f64;
    Durable {
        handle_us: per(handle),
        take_us: per(take),
        bytes: bytes as f64 / DURABLE_INPUTS as f64,
    }
}

/// Own strings of an oauth2 store: client_id, store_id, redirect_url, tokens.
fn oauth2_own(n: usize) -> u64 {
    let body: serde_json::Value = serde_json::from_str(TOKEN_BODY).unwrap();
    let tokens = body["access_token"].as_str().unwrap().len()
        + body["refresh_token"].as_str().unwrap().len();
    (0..n)
        .map(|i| {
            ("c1".len() + store_id(i).len() + "https://erp.example/done".len() + tokens) as u64
        })
        .sum()
}

struct MemRow {
    what: String,
    n: usize,
    live: f64,
    usable: f64,
    rss: f64,
    own: f64,
}

/// Measures what building an engine costs in memory.
fn measure<T>(what: &str, n: usize, build: impl FnOnce() -> (T, u64)) -> (T, MemRow, Duration) {
    trim();
    let (m0, r0) = (mem(), rss());
    let t = Instant::now();
    let (x, own) = build();
    let took = t.elapsed();
    trim();
    let (m1, r1) = (mem(), rss());
    let per = |d: i64| d as f64 / n as f64;
    let row = MemRow {
        what: what.into(),
        n,
        live: per(m1.live - m0.live),
        usable: per(m1.usable - m0.usable),
        rss: per(r1 as i64 - r0 as i64),
        own: own as f64 / n as f64,
    };
    (x, row, took)
}

fn print_mem(rows: &[MemRow]) {
    println!("\n== memory per store (bytes; overhead = beyond the store's own strings)");
    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "population", "N", "own", "requested", "usable", "RSS", "overhead(req)", "overhead(usable)"
    );
    for r in rows {
        println!(
            "{:<34} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>12.1} {:>12.1}",
            r.what,
            label(r.n),
            r.own,
            r.live,
            r.usable,
            r.rss,
            r.live - r.own,
            r.usable - r.own
        );
    }
}

/// Median of `k` timed runs of `f` (in seconds).
fn time_median(k: usize, mut f: impl FnMut() -> Duration) -> f64 {
    let mut v: Vec<f64> = (0..k).map(|_| f().as_secs_f64()).collect();
    median(&mut v)
}

/// Builds `n` authorized oauth2 stores on `platform`, token answers spread
/// over one minute from `T0`; store `i` gets `expires_in(i)` seconds.
fn oauth2_stores(
    n: usize,
    platform: &str,
    rate: u32,
    expires_in: impl Fn(usize, i64) -> i64,
) -> Engine {
    let mut e = Engine::from_config_json(&config(rate)).unwrap();
    for i in 0..n {
        let id = store_id(i);
        let now = T0 + (i as i64 * MINUTE) / n as i64;
        e.handle_ms(register(&id, platform), now).expect("register");
        let req = to_pending(&mut e, &id, platform, now);
        let body = TOKEN_BODY.replace("3600", &expires_in(i, now).to_string());
        e.handle_ms(http_response(&req, &body), now)
            .expect("token answer");
        drain(&mut e);
    }
    e
}

struct Storm {
    released: usize,
    ticks: usize,
    release: Duration,
    answer: Duration,
    max_in_window: usize,
    span_ms: i64,
}

/// Runs the host loop from the first deadline until `until`: jump to the
/// next deadline, fire, drain, answer every refresh request at once.
fn storm(e: &mut Engine, until: i64, rate: Option<usize>) -> Storm {
    let mut s = Storm {
        released: 0,
        ticks: 0,
        release: Duration::ZERO,
        answer: Duration::ZERO,
        max_in_window: 0,
        span_ms: 0,
    };
    let mut window: VecDeque<i64> = VecDeque::new();
    let (mut first, mut last) = (None, 0);
    let mut reqs: Vec<String> = Vec::new();
    let body = TOKEN_BODY;
    loop {
        let t = Instant::now();
        let Some(at) = e.poll_timeout_ms() else { break };
        if at > until {
            break;
        }
        e.handle_timeout_ms(at);
        while let Some(o) = e.poll_output() {
            if let Output::HttpRequest(r) = o {
                if r.purpose == Purpose::TokenRefresh {
                    reqs.push(r.request_id);
                }
            }
        }
        s.release += t.elapsed();
        s.ticks += 1;
        if !reqs.is_empty() {
            first.get_or_insert(at);
            last = at;
        }
        for _ in 0..reqs.len() {
            window.push_back(at);
        }
        while window.front().is_some_and(|&x| x <= at - 1000) {
            window.pop_front();
        }
        s.max_in_window = s.max_in_window.max(window.len());
        s.released += reqs.len();
        // The host answers every refresh (inputs built outside the timing).
        let answers: Vec<_> = reqs.drain(..).map(|id| http_response(&id, body)).collect();
        let t = Instant::now();
        for a in answers {
            let r = e.handle_ms(a, at);
            debug_assert!(r.is_ok());
            black_box(r).ok();
        }
        drain(e);
        s.answer += t.elapsed();
    }
    if let Some(l) = rate {
        assert!(
            s.max_in_window <= l,
            "rate limit broken: {} in one second > {l}",
            s.max_in_window
        );
    }
    s.span_ms = last - first.unwrap_or(last);
    s
}

fn print_storm(what: &str, n: usize, s: &Storm) {
    let per = |d: Duration| d.as_nanos() as f64 / s.released.max(1) as f64;
    println!(
        "{:<30} {:>6} {:>9} {:>8} {:>10.0} {:>10.0} {:>10} {:>9.1}",
        what,
        label(n),
        s.released,
        s.ticks,
        per(s.release),
        per(s.answer),
        s.max_in_window,
        s.span_ms as f64 / 1000.0
    );
}

fn main() {
    track_usable();
    let mut sizes = vec![1_000, 10_000, 100_000];
    if million() {
        sizes.push(1_000_000);
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut mem_rows = Vec::new();
    let mut snap_rows = Vec::new();
    let mut storm_rows = Vec::new();
    let mut changes_rows: Vec<(usize, Durable)> = Vec::new();

    for &n in &sizes {
        // ---------------------------------------------------- KEY population
        let (mut e, row, took) = measure("KEY + seller_id (authorized)", n, || key_stores(n));
        println!(
            "built {} KEY stores in {:.2} s",
            label(n),
            took.as_secs_f64()
        );
        mem_rows.push(row);
        let snap = e.snapshot();
        let snap_s = time_median(3, || {
            let t = Instant::now();
            black_box(e.snapshot());
            t.elapsed()
        });
        let restore_s = time_median(3, || {
            let mut fresh = engine();
            // Freed memory goes back to the system first, so that every run
            // pays for fresh pages like a host restoring at start-up.
            trim();
            let t = Instant::now();
            fresh.restore(&snap).expect("restore");
            let d = t.elapsed();
            drop(fresh);
            d
        });
        let ffi_restore_s = time_median(3, || {
            trim();
            ffi_restore(&snap)
        });
        snap_rows.push((n, snap.len(), snap_s, restore_s, ffi_restore_s));
        changes_rows.push((n, durable(&mut e, n)));
        if !quick() {
            let mut g = c.benchmark_group("scale_snapshot");
            g.sampling_mode(SamplingMode::Flat);
            g.bench_with_input(BenchmarkId::new("snapshot", label(n)), &e, |b, e| {
                b.iter(|| e.snapshot())
            });
            g.bench_with_input(BenchmarkId::new("restore", label(n)), &snap, |b, snap| {
                b.iter_batched(
                    engine,
                    |mut fresh| {
                        fresh.restore(snap).expect("restore");
                        fresh
                    },
                    BatchSize::PerIteration,
                )
            });
            g.finish();
        }
        drop(snap);
        drop(e);

        if std::env::var("SHOPAUTH_BENCH_KEY_ONLY").is_ok() {
            continue;
        }
        // ------------------------------------------- oauth2 population, timers
        let (mut e, row, took) = measure("oauth2 (authorized, 2 timers)", n, || {
            (oauth2_stores(n, "myshop", 100, |_, _| 3600), oauth2_own(n))
        });
        println!(
            "built {} oauth2 stores in {:.2} s",
            label(n),
            took.as_secs_f64()
        );
        mem_rows.push(row);
        let now = T0 + MINUTE;
        e.handle_timeout_ms(now);
        let first_due = e.poll_timeout_ms().expect("refresh timers");
        assert!(first_due >= T0 + 3_600_000 - LEAD);
        if !quick() {
            let mut g = c.benchmark_group("scale_timers");
            g.bench_function(BenchmarkId::new("poll_timeout", label(n)), |b| {
                b.iter(|| black_box(e.poll_timeout_ms()))
            });
            g.bench_function(BenchmarkId::new("handle_timeout_idle", label(n)), |b| {
                b.iter(|| e.handle_timeout_ms(black_box(now)))
            });
            g.finish();
        }
        // ------------------------------------------------- refresh storm
        let s = storm(&mut e, first_due + MINUTE, None);
        assert_eq!(s.released, n, "every store refreshed once");
        storm_rows.push(("storm, no limit (1 min)".to_owned(), n, s));
        drop(e);

        // ------------------------------------------- rate-limited storm
        let rate = (n / 40) as u32;
        let mut e = oauth2_stores(n, "rlshop", rate, |_, now| {
            // Refresh due at (now + expires_in) − lead: pick expires_in so
            // that every refresh falls in the same second.
            let offset_s = (now - T0) / 1000;
            3600 - offset_s
        });
        e.handle_timeout_ms(T0 + MINUTE);
        let first_due = e.poll_timeout_ms().expect("refresh timers");
        let s = storm(&mut e, first_due + 2 * MINUTE, Some(rate as usize));
        assert_eq!(s.released, n, "every store refreshed once");
        storm_rows.push((format!("storm, limit {rate}/s (1 s)"), n, s));
        drop(e);
    }

    print_mem(&mem_rows);
    println!("\n== snapshot and restore (KEY population; median of 3 untimed-by-criterion runs)");
    println!(
        "{:>6} {:>12} {:>12} {:>10} {:>10} {:>14} {:>16}",
        "N", "bytes", "bytes/store", "snapshot s", "restore s", "C ABI restore s", "C ABI us/store"
    );
    for (n, len, s, r, f) in &snap_rows {
        println!(
            "{:>6} {:>12} {:>12.0} {:>10.3} {:>10.3} {:>14.3} {:>16.2}",
            label(*n),
            len,
            *len as f64 / *n as f64,
            s,
            r,
            f,
            f * 1e6 / *n as f64
        );
    }
    println!(
        "\n== persistence by changes (KEY population; one store changes per input; mean of {DURABLE_INPUTS} inputs)"
    );
    println!(
        "{:>6} {:>14} {:>16} {:>18} {:>14}",
        "N", "handle+drain us", "take_changes us", "durable engine us", "changes bytes"
    );
    for (n, d) in &changes_rows {
        println!(
            "{:>6} {:>14.2} {:>16.2} {:>18.2} {:>14.0}",
            label(*n),
            d.handle_us,
            d.take_us,
            d.handle_us + d.take_us,
            d.bytes
        );
    }
    println!(
        "\n== refresh storm (host loop: poll_timeout → handle_timeout → drain → answer each refresh)"
    );
    println!(
        "{:<30} {:>6} {:>9} {:>8} {:>10} {:>10} {:>10} {:>9}",
        "storm", "N", "released", "ticks", "ns/release", "ns/answer", "max in 1s", "span s"
    );
    for (what, n, s) in &storm_rows {
        print_storm(what, *n, s);
    }
    println!();
    c.final_summary();
}
