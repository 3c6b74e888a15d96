//! One IOP token answer naming 1 000 sellers (the most a store may hold),
//! through the Rust API: parsing the answer, de-duplicating and claiming
//! the sellers, the transition to `authorized`. Issue 9 saw 80 000 sellers
//! take 29 s under the engine lock when both de-duplications were pairwise;
//! both are linear now, and more than 1 000 distinct sellers are refused.
//!
//! Each timed iteration answers one `pending` store's token_create; the
//! store is registered, authorized and brought back by the seller outside
//! the timed region, and removed again (releasing its 1 000 claims) outside
//! it, so the engine stays the same size.
//!
//! ```text
//! cargo bench --bench sellers
//! ```

mod support;

use criterion::{Criterion, black_box, criterion_group};
use serde_json::{Value, json};
use shopauth::{Engine, Output, ReplyData};
use std::time::{Duration, Instant};
use support::*;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Sellers named by each answer.
const SELLERS: usize = 1_000;

/// Brings a fresh IOP store to `pending`; returns its token_create request id.
fn pending(e: &mut Engine, store: &str) -> String {
    e.handle_ms(register(store, "taobao_tw"), T0)
        .expect("register");
    let r = e
        .handle_ms(
            input(json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL"})),
            T0,
        )
        .expect("authorize");
    let ReplyData::AuthUrl { auth_url } = r else {
        panic!("an auth_url")
    };
    let state = auth_url
        .rsplit("state=")
        .next()
        .expect("a state")
        .to_owned();
    drain(e);
    e.handle_ms(
        input(json!({"type": "oauth_redirect", "platform": "taobao_tw", "query": format!("code=c&state={state}")})),
        T0,
    )
    .expect("redirect");
    let mut id = None;
    while let Some(o) = e.poll_output() {
        if let Output::HttpRequest(r) = o {
            id = Some(r.request_id);
        }
    }
    id.expect("a token_create request")
}

/// The answer: seed 003's fields with `SELLERS` distinct sellers of `store`.
fn answer(request_id: &str, store: &str) -> shopauth::Input {
    let users: Vec<Value> = (0..SELLERS)
        .map(|i| json!({"seller_id": format!("{store}-{i:04}"), "user_id": i}))
        .collect();
    let body = json!({"access_token": "50000601c30atpedfgu3LVvik87Ixlsvle3mSoB7701ceb156fPunYZ43GBg",
        "refresh_token": "500016000300bwa2WteaQyfwBMnPxurcA0mXGhQdTt18356663CfcDTYpWoi",
        "expires_in": 259_200, "refresh_expires_in": 2_592_000, "account": "xxx@gmail.com",
        "account_platform": "seller_center", "user_info": users});
    input(
        json!({"type": "http_response", "request_id": request_id, "status": 200, "body": body.to_string()}),
    )
}

fn sellers(c: &mut Criterion) {
    let mut e = engine();
    let mut n = 0usize;
    let mut g = c.benchmark_group("sellers");
    g.bench_function("iop_token_answer_1000_sellers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let store = format!("st-{n:08}");
                let id = pending(&mut e, &store);
                let inp = answer(&id, &store);
                let t = Instant::now();
                let r = e.handle_ms(black_box(inp), T0);
                drain(&mut e);
                total += t.elapsed();
                assert!(r.is_ok(), "{r:?}");
                e.handle_ms(
                    input(json!({"type": "remove_store", "client_id": "c1", "store_id": store})),
                    T0,
                )
                .expect("remove");
                drain(&mut e);
            }
            total
        })
    });
    g.finish();
    // The store really was authorized with every seller claimed.
    let store = "st-check";
    let id = pending(&mut e, store);
    e.handle_ms(answer(&id, store), T0).expect("answer");
    drain(&mut e);
    let q = e
        .handle_ms(
            input(json!({"type": "query", "client_id": "c1", "store_id": store})),
            T0,
        )
        .expect("query");
    let ReplyData::Store(v) = q else {
        panic!("a store view")
    };
    assert_eq!(v.claims.len(), SELLERS);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

criterion_group! {name = benches; config = config(); targets = sellers}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
