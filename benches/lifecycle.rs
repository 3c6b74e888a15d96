//! One lifecycle input through the Rust API (`Engine::handle_ms` with a
//! typed `Input`, then draining its outputs with `poll_output`), on an
//! engine holding 100 000 authorized KEY stores plus a pool of 10 000
//! oauth2 stores. Also the in-run floors of issue 6 (a string-keyed
//! HashMap insert, serde_json parse and serialize of a 166-byte event).
//!
//! Every timed iteration does real work: inputs are built and stores put in
//! the right state outside the timed region (`iter_custom` in chunks), and
//! undone outside it again. The allocation count per input is measured in a
//! separate pass (same code path) with the counting allocator and printed
//! before criterion's figures.
//!
//! ```text
//! cargo bench --bench lifecycle
//! SHOPAUTH_BENCH_QUICK=1 cargo bench --bench lifecycle   # allocation table only
//! ```

mod support;

use criterion::{BatchSize, Criterion, black_box, criterion_group};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shopauth::{Engine, Input, ReplyData};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::*;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Stores in the engine (authorized KEY stores).
const POPULATION: usize = 100_000;
/// oauth2 stores the URL flows rotate through.
const OAUTH_POOL: usize = 10_000;
/// Inputs prepared per untimed setup step.
const CHUNK: usize = 10_000;

struct Bench {
    e: Engine,
    /// Next KEY store to use.
    keys: Walk,
    oauths: Walk,
    /// Fresh ids for register_store.
    fresh: usize,
    /// Authorization round (tokens differ per round, so every authorize
    /// computes a new fingerprint).
    round: usize,
}

fn oauth_id(i: usize) -> String {
    format!("oauth-{i:07}")
}

impl Bench {
    fn new() -> Bench {
        let mut e = key_population(POPULATION);
        for i in 0..OAUTH_POOL {
            e.handle_ms(register(&oauth_id(i), "myshop"), T0)
                .expect("register");
        }
        drain(&mut e);
        Bench {
            e,
            keys: Walk::new(POPULATION, store_id),
            oauths: Walk::new(OAUTH_POOL, oauth_id),
            fresh: 0,
            round: 1,
        }
    }

    fn apply_untimed(&mut self, inputs: Vec<Input>) {
        for i in inputs {
            let r = self.e.handle_ms(i, T0);
            assert!(r.is_ok(), "{r:?}");
            drain(&mut self.e);
        }
    }
}

/// What one lifecycle bench does: the untimed preparation of `n` inputs,
/// and the untimed undo after them.
#[derive(Clone, Copy, Debug)]
enum Work {
    /// KEY authorize of a revoked store (token platform, no verification).
    KeyAuthorize,
    /// Revoke of an authorized KEY store.
    Revoke,
    /// Query of an authorized KEY store.
    Query,
    /// register_store of a new id.
    Register,
    /// URL authorize on oauth2 (nonce, PKCE, URL, deadline timer).
    UrlAuthorize,
    /// oauth_redirect with code and state → pending, token request out.
    OauthRedirect,
    /// http_response with the token body → authorized, refresh timers.
    TokenResponse,
}

impl Work {
    const ALL: [Work; 7] = [
        Work::KeyAuthorize,
        Work::Revoke,
        Work::Query,
        Work::Register,
        Work::UrlAuthorize,
        Work::OauthRedirect,
        Work::TokenResponse,
    ];

    fn name(self) -> &'static str {
        match self {
            Work::KeyAuthorize => "key_authorize",
            Work::Revoke => "revoke",
            Work::Query => "query",
            Work::Register => "register_store",
            Work::UrlAuthorize => "url_authorize_oauth2",
            Work::OauthRedirect => "oauth_redirect",
            Work::TokenResponse => "token_response",
        }
    }

    /// Puts `n` stores in the right state; returns the inputs to time and
    /// the ids to undo afterwards.
    fn prepare(self, b: &mut Bench, n: usize) -> (Vec<Input>, Vec<String>) {
        match self {
            Work::KeyAuthorize => {
                let ids = b.keys.next(n);
                let revokes = ids.iter().map(|id| store_ref("revoke", id)).collect();
                b.apply_untimed(revokes);
                b.round += 1;
                let round = b.round;
                let inputs = ids
                    .iter()
                    .map(|id| key_authorize(id, &token(index_of(id), round)))
                    .collect();
                (inputs, ids)
            }
            Work::Revoke => {
                let ids = b.keys.next(n);
                (ids.iter().map(|id| store_ref("revoke", id)).collect(), ids)
            }
            Work::Query => {
                let ids = b.keys.next(n);
                (
                    ids.iter().map(|id| store_ref("query", id)).collect(),
                    vec![],
                )
            }
            Work::Register => {
                let ids: Vec<String> = (0..n)
                    .map(|k| format!("fresh-{:08}", b.fresh + k))
                    .collect();
                b.fresh += n;
                (ids.iter().map(|id| register(id, "mykey")).collect(), ids)
            }
            Work::UrlAuthorize => {
                let ids = b.oauths.next(n);
                (ids.iter().map(|id| url_authorize(id)).collect(), ids)
            }
            Work::OauthRedirect => {
                let ids = b.oauths.next(n);
                let mut inputs = Vec::with_capacity(n);
                for id in &ids {
                    let url = match b.e.handle_ms(url_authorize(id), T0) {
                        Ok(ReplyData::AuthUrl { auth_url }) => auth_url,
                        other => panic!("{other:?}"),
                    };
                    drain(&mut b.e);
                    let query = format!("code=code-{id}&state={}", state_of(&url));
                    inputs.push(input(
                        json!({"type": "oauth_redirect", "platform": "myshop", "query": query}),
                    ));
                }
                (inputs, ids)
            }
            Work::TokenResponse => {
                let ids = b.oauths.next(n);
                let inputs = ids
                    .iter()
                    .map(|id| {
                        let req = to_pending(&mut b.e, id, "myshop", T0);
                        http_response(&req, TOKEN_BODY)
                    })
                    .collect();
                (inputs, ids)
            }
        }
    }

    fn undo(self, b: &mut Bench, ids: Vec<String>) {
        let inputs: Vec<Input> = match self {
            Work::KeyAuthorize | Work::Query => return,
            Work::Revoke => {
                b.round += 1;
                let round = b.round;
                ids.iter()
                    .map(|id| key_authorize(id, &token(index_of(id), round)))
                    .collect()
            }
            Work::Register => ids.iter().map(|id| store_ref("remove_store", id)).collect(),
            Work::UrlAuthorize | Work::OauthRedirect | Work::TokenResponse => {
                ids.iter().map(|id| store_ref("revoke", id)).collect()
            }
        };
        b.apply_untimed(inputs);
    }
}

/// The timed region: each input through `handle_ms`, reply dropped,
/// outputs drained and dropped. Returns the time, the allocations made and
/// the bytes they asked for.
fn timed(e: &mut Engine, inputs: Vec<Input>) -> (Duration, u64, i64) {
    let m0 = mem();
    let mut it = inputs.into_iter();
    let t = Instant::now();
    for input in &mut it {
        let reply = e.handle_ms(input, T0);
        black_box(&reply);
        drop(reply);
        while let Some(o) = e.poll_output() {
            black_box(&o);
        }
    }
    let d = t.elapsed();
    let m1 = mem();
    // The input vector's buffer is the harness's: freed outside the timed
    // region (a large free makes glibc consolidate its fast bins).
    drop(it);
    (d, m1.allocs - m0.allocs, (m1.bytes - m0.bytes) as i64)
}

fn run(b: &mut Bench, w: Work, iters: u64) -> Duration {
    let mut left = iters as usize;
    let mut total = Duration::ZERO;
    while left > 0 {
        let n = left.min(CHUNK);
        let (inputs, ids) = w.prepare(b, n);
        total += timed(&mut b.e, inputs).0;
        w.undo(b, ids);
        left -= n;
    }
    total
}

/// The allocation table (one pass of 10 000 inputs per kind).
fn allocation_table(b: &mut Bench) {
    println!(
        "\n== allocations per input (engine of {POPULATION} authorized KEY stores + {OAUTH_POOL} oauth2 stores; 10 000 inputs each; reply and drained outputs dropped)"
    );
    println!(
        "{:<24} {:>12} {:>16} {:>14}",
        "input", "allocs/input", "bytes/input", "ns/input (1 pass)"
    );
    for w in Work::ALL {
        let (inputs, ids) = w.prepare(b, CHUNK);
        let n = inputs.len() as f64;
        let (d, allocs, live) = timed(&mut b.e, inputs);
        w.undo(b, ids);
        println!(
            "{:<24} {:>12.2} {:>16.1} {:>14.0}",
            w.name(),
            allocs as f64 / n,
            live as f64 / n,
            d.as_nanos() as f64 / n
        );
    }
    println!();
}

fn lifecycle(c: &mut Criterion) {
    let t = Instant::now();
    let mut b = Bench::new();
    println!(
        "setup: {} stores in {:.2} s",
        b.e.store_count(),
        t.elapsed().as_secs_f64()
    );
    allocation_table(&mut b);
    if std::env::var("SHOPAUTH_BENCH_QUICK").is_ok() {
        return;
    }
    let mut g = c.benchmark_group("lifecycle");
    for w in Work::ALL {
        g.bench_function(w.name(), |bencher| {
            bencher.iter_custom(|iters| run(&mut b, w, iters))
        });
    }
    g.finish();
}

// ------------------------------------------------------------ floors

/// A 166-byte event, the size issue 6 quotes for the serde_json floors.
#[derive(Serialize, Deserialize)]
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
    let ev: Event = serde_json::from_str(EVENT).unwrap();
    g.bench_function("serde_json_serialize_166B_event", |b| {
        b.iter(|| serde_json::to_string(black_box(&ev)).unwrap())
    });
    // A string-keyed HashMap of 100 000 entries; each iteration inserts a
    // new key (built outside the timed region); the map is cut back to
    // 100 000 outside it.
    let mut map: HashMap<String, u32> = (0..POPULATION).map(|i| (store_id(i), i as u32)).collect();
    let mut next = POPULATION;
    g.bench_function("hashmap_string_insert_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                let keys: Vec<String> = (next..next + n).map(store_id).collect();
                let t = Instant::now();
                for (k, key) in keys.into_iter().enumerate() {
                    map.insert(key, k as u32);
                }
                total += t.elapsed();
                for i in next..next + n {
                    map.remove(&store_id(i));
                }
                next += n;
                left -= n;
            }
            total
        })
    });
    g.bench_function("string_alloc_32B", |b| {
        b.iter_batched(
            || (),
            |_| String::from(black_box("0123456789abcdef0123456789abcdef")),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

criterion_group! {name = benches; config = config(); targets = lifecycle, floors}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
