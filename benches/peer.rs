//! shopauth against oauth2-rs (5.0, no HTTP client), in the same run, for
//! the two things both do: building the authorize URL and reading a token
//! endpoint's answer. Three levels each, so that like is compared with like:
//!
//! authorize URL
//! - `given`: state and S256 challenge given; only the URL is built.
//!   shopauth `platform::oauth2::authorize_url`; oauth2-rs
//!   `authorize_url(..).add_scope(..).set_pkce_challenge(..).url()` turned
//!   into a `String` (it must also take owned copies of the state and the
//!   challenge: part of its API, counted).
//! - `from_verifier`: both also derive the challenge from a given 43-char
//!   verifier (SHA-256 + base64url): shopauth with sha2/base64 as the
//!   engine does; oauth2-rs `PkceCodeChallenge::from_code_verifier_sha256`.
//! - `whole_step`: shopauth `Engine::handle_ms(authorize URL)` on a store
//!   among 10 000 + drain (HMAC nonce, HMAC PKCE verifier, SHA-256, URL,
//!   state change, deadline timer, transition output); oauth2-rs with a
//!   random CSRF token and a random PKCE pair (`new_random_sha256`) — the
//!   closest it has, and it does less (no state kept, no timer, no output).
//!
//! token answer (the RFC 6749 §4.1.4 example, 141 bytes)
//! - `parse`: shopauth `platform::oauth2::read_token` (classifies errors,
//!   computes absolute expiry times, wraps secrets); oauth2-rs's own parse
//!   step (`serde_path_to_error` into `BasicTokenResponse`, what its
//!   `endpoint_response` does after the status and content-type checks).
//! - `exchange`: shopauth `platform::oauth2::build` (token request: form
//!   body, headers) + `read_token`; oauth2-rs `exchange_code(..)
//!   .set_pkce_verifier(..).request(&mock)` where the mock HTTP client drops
//!   the `http::Request` and answers a prebuilt `http::Response` (the copy
//!   of the 141-byte body into it is on oauth2-rs's side, ~20 ns).
//! - `whole_step`: shopauth `Engine::handle_ms(http_response)` on a pending
//!   store + drain (request lookup, parse, tokens stored, refresh and
//!   expiry timers, transition); no oauth2-rs counterpart.
//!
//! ```text
//! cargo bench --bench peer
//! ```

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, black_box, criterion_group};
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use sha2::{Digest, Sha256};
use shopauth::message::Purpose;
use shopauth::platform::oauth2::{ClientAuth, Oauth2App};
use shopauth::platform::{Ctx, oauth2 as sa};
use shopauth::{Engine, Input, Secret};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

#[global_allocator]
static ALLOC: Counting = Counting;

const STATE: &str = "17_9f86d081884c7d659a2feaa0c55ad015";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CODE: &str = "SplxlOBeZQQYbYS6WxSbIA";
const POOL: usize = 10_000;

fn app() -> Oauth2App {
    Oauth2App {
        app_key: "cid".into(),
        app_secret: Secret::new("oauth2-app-secret"),
        redirect_uri: "https://host.example/cb/myshop".into(),
        authorize_url: "https://as.example/authorize".into(),
        token_url: "https://as.example/token".into(),
        scope: Some("orders".into()),
        client_auth: ClientAuth::ClientSecretPost,
        pkce: true,
        extra_authorize_params: BTreeMap::new(),
    }
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn ctx(now: i64) -> Ctx<'static> {
    Ctx {
        now,
        seller_id: None,
        code: Some(CODE),
        pkce_verifier: Some(VERIFIER),
        tokens: None,
        key: None,
        learned: &[],
    }
}

type Rs = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn rs_client() -> Rs {
    BasicClient::new(ClientId::new("cid".into()))
        .set_client_secret(ClientSecret::new("oauth2-app-secret".into()))
        .set_auth_uri(AuthUrl::new("https://as.example/authorize".into()).unwrap())
        .set_token_uri(TokenUrl::new("https://as.example/token".into()).unwrap())
        .set_redirect_uri(RedirectUrl::new("https://host.example/cb/myshop".into()).unwrap())
        .set_auth_type(oauth2::AuthType::RequestBody)
}

fn mock(_req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, std::io::Error> {
    Ok(oauth2::http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(TOKEN_BODY.as_bytes().to_vec())
        .unwrap())
}

/// Both sides agree on what they produce (checked once, outside timing).
fn check_equivalence(app: &Oauth2App, rs: &Rs) {
    let ch = s256(VERIFIER);
    let ours = sa::authorize_url(app, STATE, Some(&ch));
    let (theirs, _) = rs
        .authorize_url(|| CsrfToken::new(STATE.into()))
        .add_scope(Scope::new("orders".into()))
        .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(
            &PkceCodeVerifier::new(VERIFIER.into()),
        ))
        .url();
    let pairs = |u: &str| {
        let mut v: Vec<(String, String)> = url::Url::parse(u)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(pairs(&ours), pairs(theirs.as_str()), "same parameters");
    println!("authorize URL, shopauth : {ours}");
    println!("authorize URL, oauth2-rs: {theirs}");
    let t = sa::read_token(Purpose::TokenCreate, 200, TOKEN_BODY, &ctx(T0)).unwrap();
    let r: BasicTokenResponse = serde_json::from_str(TOKEN_BODY).unwrap();
    assert_eq!(t.access.expose(), r.access_token().secret());
    let r = rs
        .exchange_code(AuthorizationCode::new(CODE.into()))
        .set_pkce_verifier(PkceCodeVerifier::new(VERIFIER.into()))
        .request(&mock)
        .unwrap();
    assert_eq!(r.expires_in(), Some(Duration::from_secs(3600)));
}

/// A pool of oauth2 stores for the engine's whole steps.
struct Pool {
    e: Engine,
    cursor: usize,
}

impl Pool {
    fn new() -> Pool {
        let mut e = engine();
        register_many(&mut e, POOL, "myshop", T0);
        Pool { e, cursor: 0 }
    }
    fn ids(&mut self, n: usize) -> Vec<String> {
        let v = (0..n).map(|k| store_id((self.cursor + k) % POOL)).collect();
        self.cursor = (self.cursor + n) % POOL;
        v
    }
    fn revoke(&mut self, ids: &[String]) {
        for id in ids {
            self.e.handle_ms(store_ref("revoke", id), T0).unwrap();
            drain(&mut self.e);
        }
    }
    /// Timed chunks of `make(ids)` inputs; undone by revoking.
    fn run(&mut self, iters: u64, make: impl Fn(&mut Engine, &[String]) -> Vec<Input>) -> Duration {
        let mut left = iters as usize;
        let mut total = Duration::ZERO;
        while left > 0 {
            let n = left.min(POOL);
            let ids = self.ids(n);
            let mut inputs = make(&mut self.e, &ids).into_iter();
            let t = Instant::now();
            for i in &mut inputs {
                black_box(self.e.handle_ms(i, T0)).ok();
                while let Some(o) = self.e.poll_output() {
                    black_box(o);
                }
            }
            total += t.elapsed();
            drop(inputs);
            self.revoke(&ids);
            left -= n;
        }
        total
    }
}

fn allocs_of(n: usize, mut f: impl FnMut()) -> f64 {
    let m0 = mem();
    for _ in 0..n {
        f();
    }
    (mem().allocs - m0.allocs) as f64 / n as f64
}

fn peer(c: &mut Criterion) {
    let app = app();
    let rs = rs_client();
    check_equivalence(&app, &rs);
    let ch = s256(VERIFIER);
    let rs_ch =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(VERIFIER.into()));

    let sa_given = || {
        black_box(sa::authorize_url(
            &app,
            black_box(STATE),
            Some(black_box(&ch)),
        ))
    };
    let rs_given = || {
        let (u, s) = rs
            .authorize_url(|| CsrfToken::new(black_box(STATE).to_owned()))
            .add_scope(Scope::new("orders".into()))
            .set_pkce_challenge(black_box(&rs_ch).clone())
            .url();
        black_box((String::from(u), s))
    };
    let sa_verifier = || {
        let ch = s256(black_box(VERIFIER));
        black_box(sa::authorize_url(&app, black_box(STATE), Some(&ch)))
    };
    let rs_verifier = || {
        let v = PkceCodeVerifier::new(black_box(VERIFIER).to_owned());
        let (u, s) = rs
            .authorize_url(|| CsrfToken::new(black_box(STATE).to_owned()))
            .add_scope(Scope::new("orders".into()))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&v))
            .url();
        black_box((String::from(u), s))
    };
    let rs_random = || {
        let (pkce, verifier) = PkceCodeChallenge::new_random_sha256();
        let (u, s) = rs
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("orders".into()))
            .set_pkce_challenge(pkce)
            .url();
        black_box((String::from(u), s, verifier))
    };
    let c0 = ctx(T0);
    let sa_parse = || {
        black_box(sa::read_token(
            Purpose::TokenCreate,
            200,
            black_box(TOKEN_BODY),
            &c0,
        ))
    };
    let rs_parse = || {
        let r: Result<BasicTokenResponse, _> = serde_path_to_error::deserialize(
            &mut serde_json::Deserializer::from_slice(black_box(TOKEN_BODY).as_bytes()),
        );
        black_box(r)
    };
    let sa_exchange = || {
        let req = sa::build(&app, Purpose::TokenCreate, &c0);
        black_box(req);
        black_box(sa::read_token(
            Purpose::TokenCreate,
            200,
            black_box(TOKEN_BODY),
            &c0,
        ))
    };
    let rs_exchange = || {
        black_box(
            rs.exchange_code(AuthorizationCode::new(black_box(CODE).to_owned()))
                .set_pkce_verifier(PkceCodeVerifier::new(VERIFIER.to_owned()))
                .request(&mock),
        )
    };

    println!("\n== allocations per call (10 000 calls each)");
    let n = 10_000;
    for (name, a) in [
        (
            "authorize_url/given        shopauth ",
            allocs_of(n, || drop(sa_given())),
        ),
        (
            "authorize_url/given        oauth2-rs",
            allocs_of(n, || drop(rs_given())),
        ),
        (
            "authorize_url/from_verifier shopauth ",
            allocs_of(n, || drop(sa_verifier())),
        ),
        (
            "authorize_url/from_verifier oauth2-rs",
            allocs_of(n, || drop(rs_verifier())),
        ),
        (
            "authorize_url/whole_step   oauth2-rs",
            allocs_of(n, || drop(rs_random())),
        ),
        (
            "token/parse                shopauth ",
            allocs_of(n, || drop(sa_parse())),
        ),
        (
            "token/parse                oauth2-rs",
            allocs_of(n, || drop(rs_parse())),
        ),
        (
            "token/exchange             shopauth ",
            allocs_of(n, || drop(sa_exchange())),
        ),
        (
            "token/exchange             oauth2-rs",
            allocs_of(n, || drop(rs_exchange())),
        ),
    ] {
        println!("{name} {a:>8.2}");
    }
    println!();
    if std::env::var("SHOPAUTH_BENCH_QUICK").is_ok() {
        return;
    }

    let mut g = c.benchmark_group("peer_authorize_url");
    g.bench_function("given/shopauth", |b| b.iter(sa_given));
    g.bench_function("given/oauth2-rs", |b| b.iter(rs_given));
    g.bench_function("from_verifier/shopauth", |b| b.iter(sa_verifier));
    g.bench_function("from_verifier/oauth2-rs", |b| b.iter(rs_verifier));
    let mut pool = Pool::new();
    g.bench_function("whole_step/shopauth_engine", |b| {
        b.iter_custom(|iters| {
            pool.run(iters, |_, ids| {
                ids.iter().map(|id| url_authorize(id)).collect()
            })
        })
    });
    g.bench_function("whole_step/oauth2-rs_random", |b| b.iter(rs_random));
    g.finish();

    let mut g = c.benchmark_group("peer_token_response");
    g.bench_function("parse/shopauth", |b| b.iter(sa_parse));
    g.bench_function("parse/oauth2-rs", |b| b.iter(rs_parse));
    g.bench_function("exchange/shopauth", |b| b.iter(sa_exchange));
    g.bench_function("exchange/oauth2-rs_mock_http", |b| b.iter(rs_exchange));
    g.bench_function("whole_step/shopauth_engine", |b| {
        b.iter_custom(|iters| {
            pool.run(iters, |e, ids| {
                ids.iter()
                    .map(|id| http_response(&to_pending(e, id, "myshop", T0), TOKEN_BODY))
                    .collect()
            })
        })
    });
    g.finish();
}

fn config_c() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {name = benches; config = config_c(); targets = peer}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
