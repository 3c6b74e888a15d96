//! One input through the C ABI: `shopauth_engine_handle` with a JSON text
//! in, the reply envelope out and freed with `shopauth_string_free`
//! (optionally also `shopauth_engine_poll_outputs` + free, as a host that
//! drains after every call does), on an engine of 100 000 authorized KEY
//! stores plus 10 000 oauth2 stores — the `lifecycle` workload through the
//! JSON door. The same through the Rust JSON entry point
//! (`Engine::handle_json` + `drain_outputs_json`) separates the cost of the
//! boundary (mutex, catch_unwind, pointer checks, CString copy) from JSON;
//! `+handle_drain` is the one call that hands out the reply and the drained
//! outputs together. The group `floor` is the serde-parse floor of the C ABI
//! target, in the same run.
//!
//! ```text
//! cargo bench --bench c_abi
//! ```

mod support;

use criterion::{Criterion, black_box, criterion_group};
use serde_json::{Value, json};
use shopauth::Engine;
use shopauth::ffi::*;
use std::ffi::{CStr, c_char};
use std::time::{Duration, Instant};
use support::*;

#[global_allocator]
static ALLOC: Counting = Counting;

const POPULATION: usize = 100_000;
const OAUTH_POOL: usize = 10_000;
const CHUNK: usize = 10_000;

/// Either door to an engine.
trait Door {
    /// One input, reply as text.
    fn call(&mut self, text: &str) -> String;
    /// Every queued output as a JSON array text.
    fn outputs(&mut self) -> String;
}

struct C(*mut shopauth_engine);

impl C {
    fn new() -> C {
        let cfg = config(100);
        let mut e = std::ptr::null_mut();
        let st = unsafe {
            shopauth_engine_new(cfg.as_ptr().cast(), cfg.len(), &mut e, std::ptr::null_mut())
        };
        assert_eq!(st, shopauth_status::SHOPAUTH_OK);
        C(e)
    }
}

impl Drop for C {
    fn drop(&mut self) {
        unsafe { shopauth_engine_free(self.0) }
    }
}

fn take(p: *mut c_char) -> String {
    let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
    unsafe { shopauth_string_free(p) };
    s
}

impl Door for C {
    fn call(&mut self, text: &str) -> String {
        let mut reply = std::ptr::null_mut();
        unsafe { shopauth_engine_handle(self.0, text.as_ptr().cast(), text.len(), T0, &mut reply) };
        take(reply)
    }
    fn outputs(&mut self) -> String {
        let mut out = std::ptr::null_mut();
        let st = unsafe { shopauth_engine_poll_outputs(self.0, &mut out) };
        if st == shopauth_status::SHOPAUTH_OK {
            take(out)
        } else {
            "[]".into()
        }
    }
}

impl Door for Engine {
    fn call(&mut self, text: &str) -> String {
        self.handle_json(text, T0).1
    }
    fn outputs(&mut self) -> String {
        self.drain_outputs_json()
    }
}

fn ok(d: &mut impl Door, v: Value) -> Value {
    let r: Value = serde_json::from_str(&d.call(&v.to_string())).unwrap();
    assert_eq!(r["code"], 200, "{r} for {v}");
    r
}

fn oauth_id(i: usize) -> String {
    format!("oauth-{i:07}")
}

fn key_auth_json(id: &str, round: usize) -> String {
    let i = index_of(id);
    json!({"type": "authorize", "client_id": "c1", "store_id": id, "auth_type": "KEY",
           "auth_info": {"token": token(i, round)}})
    .to_string()
}

fn ref_json(kind: &str, id: &str) -> String {
    json!({"type": kind, "client_id": "c1", "store_id": id}).to_string()
}

struct Bench<D: Door> {
    d: D,
    keys: Walk,
    oauths: Walk,
    round: usize,
}

impl<D: Door> Bench<D> {
    fn new(mut d: D) -> Self {
        for i in 0..POPULATION {
            let id = store_id(i);
            ok(
                &mut d,
                json!({"type": "register_store", "client_id": "c1", "store_id": id, "platform": "mykey"}),
            );
            d.call(&key_auth_json(&id, 0));
        }
        for i in 0..OAUTH_POOL {
            ok(
                &mut d,
                json!({"type": "register_store", "client_id": "c1", "store_id": oauth_id(i), "platform": "myshop"}),
            );
        }
        d.outputs();
        Bench {
            d,
            keys: Walk::new(POPULATION, store_id),
            oauths: Walk::new(OAUTH_POOL, oauth_id),
            round: 1,
        }
    }

    fn untimed(&mut self, texts: &[String]) {
        for t in texts {
            let r = self.d.call(t);
            assert!(r.starts_with(r#"{"code":200"#), "{r}");
            self.d.outputs();
        }
    }

    /// Prepares `n` inputs of `w`; returns them and the undo inputs.
    fn prepare(&mut self, w: Work, n: usize) -> (Vec<String>, Vec<String>) {
        match w {
            Work::KeyAuthorize => {
                let ids = self.keys.next(n);
                let revokes: Vec<String> = ids.iter().map(|id| ref_json("revoke", id)).collect();
                self.untimed(&revokes);
                self.round += 1;
                (
                    ids.iter().map(|id| key_auth_json(id, self.round)).collect(),
                    vec![],
                )
            }
            Work::Query => {
                let ids = self.keys.next(n);
                (ids.iter().map(|id| ref_json("query", id)).collect(), vec![])
            }
            Work::TokenResponse => {
                let ids = self.oauths.next(n);
                let mut inputs = Vec::with_capacity(n);
                for id in &ids {
                    let r = ok(
                        &mut self.d,
                        json!({"type": "authorize", "client_id": "c1", "store_id": id,
                        "auth_type": "URL", "redirect_url": "https://erp.example/done"}),
                    );
                    let url = r["data"]["auth_url"].as_str().unwrap();
                    let query = format!("code=code-{id}&state={}", state_of(url));
                    self.d.outputs();
                    ok(
                        &mut self.d,
                        json!({"type": "oauth_redirect", "platform": "myshop", "query": query}),
                    );
                    let outs: Vec<Value> = serde_json::from_str(&self.d.outputs()).unwrap();
                    let req = outs
                        .iter()
                        .find(|o| o["type"] == "http_request")
                        .expect("token request");
                    inputs.push(
                        json!({"type": "http_response", "request_id": req["request_id"], "status": 200,
                               "headers": [["content-type", "application/json"]], "body": TOKEN_BODY})
                        .to_string(),
                    );
                }
                (
                    inputs,
                    ids.iter().map(|id| ref_json("revoke", id)).collect(),
                )
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Work {
    KeyAuthorize,
    Query,
    TokenResponse,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::KeyAuthorize => "key_authorize",
            Work::Query => "query",
            Work::TokenResponse => "token_response",
        }
    }
}

/// Timed: each text through `shopauth_engine_handle_drain` (reply and
/// outputs in one text), freed.
fn timed_c_drain(e: *mut shopauth_engine, texts: &[String]) -> Duration {
    let t = Instant::now();
    for text in texts {
        let mut out = std::ptr::null_mut();
        let mut len = 0usize;
        let st = unsafe {
            shopauth_engine_handle_drain(
                e,
                text.as_ptr().cast(),
                text.len(),
                T0,
                &mut out,
                &mut len,
            )
        };
        black_box((st, len));
        unsafe { shopauth_string_free(black_box(out)) };
    }
    t.elapsed()
}

/// Timed: each text through the C ABI, reply freed; with `drain`, also
/// `poll_outputs` + free after each.
fn timed_c(e: *mut shopauth_engine, texts: &[String], drain: bool) -> Duration {
    let t = Instant::now();
    for text in texts {
        let mut reply = std::ptr::null_mut();
        let st =
            unsafe { shopauth_engine_handle(e, text.as_ptr().cast(), text.len(), T0, &mut reply) };
        black_box(st);
        unsafe { shopauth_string_free(black_box(reply)) };
        if drain {
            let mut out = std::ptr::null_mut();
            unsafe { shopauth_engine_poll_outputs(e, &mut out) };
            unsafe { shopauth_string_free(black_box(out)) };
        }
    }
    t.elapsed()
}

/// Timed: each text through `Engine::handle_json`; with `drain`, also
/// `drain_outputs_json`.
fn timed_rust(e: &mut Engine, texts: &[String], drain: bool) -> Duration {
    let t = Instant::now();
    for text in texts {
        black_box(e.handle_json(text, T0));
        if drain {
            black_box(e.drain_outputs_json());
        }
    }
    t.elapsed()
}

fn run<D: Door>(
    b: &mut Bench<D>,
    w: Work,
    iters: u64,
    timed: impl Fn(&mut D, &[String]) -> Duration,
) -> Duration {
    let mut left = iters as usize;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(CHUNK);
        let (texts, undo) = b.prepare(w, n);
        total += timed(&mut b.d, &texts);
        b.d.outputs();
        b.untimed(&undo);
        left -= n;
    }
    total
}

fn allocations<D: Door>(
    b: &mut Bench<D>,
    door: &str,
    timed: impl Fn(&mut D, &[String]) -> Duration,
) {
    for w in [Work::KeyAuthorize, Work::Query, Work::TokenResponse] {
        let (texts, undo) = b.prepare(w, CHUNK);
        let m0 = mem();
        let d = timed(&mut b.d, &texts);
        let m1 = mem();
        b.d.outputs();
        b.untimed(&undo);
        let n = texts.len() as f64;
        println!(
            "{:<12} {:<16} {:>12.2} {:>12.0} {:>12.0}",
            door,
            w.name(),
            (m1.allocs - m0.allocs) as f64 / n,
            (m1.bytes - m0.bytes) as f64 / n,
            d.as_nanos() as f64 / n
        );
    }
}

fn c_abi(c: &mut Criterion) {
    let t = Instant::now();
    let mut cb = Bench::new(C::new());
    let mut rb = Bench::new(Engine::from_config_json(&config(100)).unwrap());
    println!(
        "setup: two engines of {} stores in {:.2} s",
        POPULATION + OAUTH_POOL,
        t.elapsed().as_secs_f64()
    );
    println!(
        "\n== allocations per input, JSON in and out, poll_outputs after each (10 000 inputs each)"
    );
    println!(
        "{:<12} {:<16} {:>12} {:>12} {:>12}",
        "door", "input", "allocs/input", "bytes/input", "ns (1 pass)"
    );
    allocations(&mut cb, "c_abi", |d, x| timed_c(d.0, x, true));
    allocations(&mut cb, "c_abi_drain", |d, x| timed_c_drain(d.0, x));
    allocations(&mut rb, "rust_json", |d, x| timed_rust(d, x, true));
    println!();
    if std::env::var("SHOPAUTH_BENCH_QUICK").is_ok() {
        return;
    }
    let mut g = c.benchmark_group("c_abi");
    for (w, drain) in [
        (Work::KeyAuthorize, false),
        (Work::KeyAuthorize, true),
        (Work::Query, false),
        (Work::TokenResponse, true),
    ] {
        let name = format!("{}{}", w.name(), if drain { "+poll_outputs" } else { "" });
        g.bench_function(&name, |bencher| {
            bencher.iter_custom(|iters| run(&mut cb, w, iters, |d, x| timed_c(d.0, x, drain)))
        });
    }
    for w in [Work::KeyAuthorize, Work::TokenResponse] {
        let name = format!("{}+handle_drain", w.name());
        g.bench_function(&name, |bencher| {
            bencher.iter_custom(|iters| run(&mut cb, w, iters, |d, x| timed_c_drain(d.0, x)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("rust_json");
    for (w, drain) in [(Work::KeyAuthorize, false), (Work::KeyAuthorize, true)] {
        let name = format!(
            "{}{}",
            w.name(),
            if drain { "+drain_outputs_json" } else { "" }
        );
        g.bench_function(&name, |bencher| {
            bencher.iter_custom(|iters| run(&mut rb, w, iters, |d, x| timed_rust(d, x, drain)))
        });
    }
    g.finish();
}

// ------------------------------------------------------------ floors

/// The 166-byte event of the `lifecycle` floors: the serde-parse floor the
/// C ABI target is stated in, measured in the same run.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    event_id: String,
    seq: u64,
    client_id: String,
    store_id: String,
    from: String,
    to: String,
    attempt: u32,
    at: String,
}

const EVENT: &str = r#"{"type":"transition","event_id":"evt-12","seq":3,"client_id":"c1","store_id":"s-12345","from":"pending","to":"authorized","attempt":1,"at":"2026-01-01T00:00:20.000Z"}"#;

fn floors(c: &mut Criterion) {
    assert_eq!(EVENT.len(), 166);
    if std::env::var("SHOPAUTH_BENCH_QUICK").is_ok() {
        return;
    }
    let mut g = c.benchmark_group("floor");
    g.bench_function("serde_json_parse_166B_event", |b| {
        b.iter(|| serde_json::from_str::<Event>(black_box(EVENT)).unwrap())
    });
    g.finish();
}

fn config_c() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

criterion_group! {name = benches; config = config_c(); targets = c_abi, floors}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
