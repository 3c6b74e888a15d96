//! Shared bench support: a counting global allocator, the bench
//! configuration, and helpers that drive an engine to a given population of
//! stores (outside any timed region).
//!
//! Each bench binary does `mod support;` and installs the allocator with
//! `#[global_allocator] static A: support::Counting = support::Counting;`.
//! Counters are thread-local (`const`-initialised `Cell`s: no atomics, no
//! lazy init), so the cost per allocation is a few TLS increments (plus a
//! `malloc_usable_size` call where usable bytes are tracked, see
//! [`track_usable`]); the engine runs on the bench's main thread.
#![allow(dead_code)]

use serde_json::{Value, json};
use shopauth::{Engine, Output};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// 2023-11-14T22:13:20Z.
pub const T0: i64 = 1_700_000_000_000;

// ------------------------------------------------------------ allocator

unsafe extern "C" {
    fn malloc_usable_size(ptr: *mut u8) -> usize;
}

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
    /// Requested bytes allocated so far (reallocations count their growth).
    static BYTES: Cell<u64> = const { Cell::new(0) };
    /// Requested bytes currently live (alloc − free, realloc adjusted).
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Usable bytes currently live (what malloc really reserved for the block,
    /// without its 8-byte header).
    static USABLE: Cell<i64> = const { Cell::new(0) };
}

fn bump(c: &'static std::thread::LocalKey<Cell<u64>>) {
    let _ = c.try_with(|c| c.set(c.get() + 1));
}

/// Whether `USABLE` is kept (a `malloc_usable_size` call per (de)allocation:
/// only the memory measurements of `scale` turn it on).
static TRACK_USABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns on tracking of usable bytes (before anything is allocated that
/// will be measured).
pub fn track_usable() {
    TRACK_USABLE.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn usable(p: *mut u8) -> i64 {
    if TRACK_USABLE.load(std::sync::atomic::Ordering::Relaxed) {
        (unsafe { malloc_usable_size(p) }) as i64
    } else {
        0
    }
}

fn add(c: &'static std::thread::LocalKey<Cell<i64>>, d: i64) {
    let _ = c.try_with(|c| c.set(c.get() + d));
}

/// `System`, counting.
pub struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            bump(&ALLOCS);
            let _ = BYTES.try_with(|c| c.set(c.get() + layout.size() as u64));
            add(&LIVE, layout.size() as i64);
            add(&USABLE, usable(p));
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            bump(&ALLOCS);
            let _ = BYTES.try_with(|c| c.set(c.get() + layout.size() as u64));
            add(&LIVE, layout.size() as i64);
            add(&USABLE, usable(p));
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        bump(&FREES);
        add(&LIVE, -(layout.size() as i64));
        add(&USABLE, -usable(ptr));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_usable = usable(ptr);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            bump(&ALLOCS);
            let grow = new_size.saturating_sub(layout.size()) as u64;
            let _ = BYTES.try_with(|c| c.set(c.get() + grow));
            add(&LIVE, new_size as i64 - layout.size() as i64);
            add(&USABLE, usable(p) - old_usable);
        }
        p
    }
}

/// A reading of this thread's allocation counters.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    /// Allocations (and reallocations) so far.
    pub allocs: u64,
    pub frees: u64,
    /// Requested bytes allocated so far.
    pub bytes: u64,
    /// Requested bytes live.
    pub live: i64,
    /// Usable bytes live (malloc's view, without per-block headers).
    pub usable: i64,
}

pub fn mem() -> Mem {
    Mem {
        allocs: ALLOCS.with(Cell::get),
        frees: FREES.with(Cell::get),
        bytes: BYTES.with(Cell::get),
        live: LIVE.with(Cell::get),
        usable: USABLE.with(Cell::get),
    }
}

/// Resident set size of the process in bytes (Linux).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Asks glibc to give freed memory back, so an RSS delta starts clean.
pub fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    unsafe {
        malloc_trim(0);
    }
}

// ------------------------------------------------------------ configuration

/// The bench configuration: an oauth2 platform (`myshop`), the same with a
/// rate limit (`rlshop`, `rate` requests per second), KEY platforms with a
/// token (`mykey`) and a pair (`pairkey`), and IOP (`taobao_tw`).
pub fn config(rate: u32) -> String {
    json!({
        "secret": SECRET,
        "apps": {
            "myshop": {"app_key": "cid", "app_secret": "oauth2-app-secret", "redirect_uri": "https://host.example/cb/myshop"},
            "rlshop": {"app_key": "cid", "app_secret": "oauth2-app-secret", "redirect_uri": "https://host.example/cb/rlshop"},
            "taobao_tw": {"app_key": "123456", "app_secret": "iop-tw-secret", "redirect_uri": "https://host.example/cb/taobao_tw"}
        },
        "platforms": {
            "myshop": {"kind": "oauth2", "authorize_url": "https://as.example/authorize", "token_url": "https://as.example/token", "scope": "orders"},
            "rlshop": {"kind": "oauth2", "authorize_url": "https://as.example/authorize", "token_url": "https://as.example/token", "scope": "orders",
                       "rate_limit_per_s": rate},
            "mykey": {"kind": "key", "credential": "token"},
            "pairkey": {"kind": "key", "credential": "api_key_secret"}
        }
    })
    .to_string()
}

pub fn engine() -> Engine {
    Engine::from_config_json(&config(100)).expect("bench config is valid")
}

/// The RFC 6749 §4.1.4 example answer (with a scope): 141 bytes.
pub const TOKEN_BODY: &str = r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","scope":"orders"}"#;

// ------------------------------------------------------------ ids

/// Store ids have a fixed width so that memory per store is comparable.
pub fn store_id(i: usize) -> String {
    format!("store-{i:08}")
}

/// The index of a `store_id`.
pub fn index_of(id: &str) -> usize {
    id[6..].parse().expect("a store_id")
}

/// The `i`-th element of a fixed permutation of `0..n` (`n` a product of
/// powers of 2 and 5, as the pool sizes are): multiplication by a prime
/// that divides neither.
pub fn scatter(i: usize, n: usize) -> usize {
    debug_assert!(n % 3 != 0 && n % 7919 != 0);
    (i % n) * 7919 % n
}

/// A walk over a pool of stores in the order of [`scatter`], so that no
/// input finds the previous one's store, index entries or claims in cache.
pub struct Walk {
    cursor: usize,
    size: usize,
    id: fn(usize) -> String,
}

impl Walk {
    /// A walk over `size` stores named by `id`.
    pub fn new(size: usize, id: fn(usize) -> String) -> Walk {
        Walk {
            cursor: 0,
            size,
            id,
        }
    }

    /// The next `n` store ids.
    pub fn next(&mut self, n: usize) -> Vec<String> {
        assert!(n <= self.size);
        let ids = (0..n)
            .map(|k| (self.id)(scatter(self.cursor + k, self.size)))
            .collect();
        self.cursor = (self.cursor + n) % self.size;
        ids
    }
}

/// KEY tokens: 32 characters.
pub fn token(i: usize, round: usize) -> String {
    format!("tok-{round:04}-{i:022}")
}

pub fn input(v: Value) -> shopauth::Input {
    serde_json::from_value(v).expect("bench input parses")
}

pub fn register(store: &str, platform: &str) -> shopauth::Input {
    input(
        json!({"type": "register_store", "client_id": "c1", "store_id": store, "platform": platform}),
    )
}

pub fn key_authorize(store: &str, token: &str) -> shopauth::Input {
    input(
        json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "KEY", "auth_info": {"token": token}}),
    )
}

pub fn url_authorize(store: &str) -> shopauth::Input {
    input(
        json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL",
                 "redirect_url": "https://erp.example/done"}),
    )
}

pub fn store_ref(kind: &str, store: &str) -> shopauth::Input {
    input(json!({"type": kind, "client_id": "c1", "store_id": store}))
}

pub fn drain(e: &mut Engine) -> usize {
    let mut n = 0;
    while let Some(o) = e.poll_output() {
        drop(o);
        n += 1;
    }
    n
}

/// Registers `n` stores on `platform` (ids `store_id(0..n)`).
pub fn register_many(e: &mut Engine, n: usize, platform: &str, now: i64) {
    for i in 0..n {
        let r = e.handle_ms(register(&store_id(i), platform), now);
        assert!(r.is_ok(), "register {i}: {r:?}");
    }
    drain(e);
}

/// Registers and KEY-authorizes `n` stores on `mykey`.
pub fn key_population(n: usize) -> Engine {
    let mut e = engine();
    for i in 0..n {
        let id = store_id(i);
        e.handle_ms(register(&id, "mykey"), T0).expect("register");
        e.handle_ms(key_authorize(&id, &token(i, 0)), T0)
            .expect("authorize");
        drain(&mut e);
    }
    e
}

/// The `state` parameter of an authorize URL.
pub fn state_of(url: &str) -> String {
    let q = url.split_once('?').expect("url has a query").1;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("url has a state")
}

/// Takes a store on an oauth2 `platform` from registered to `pending`
/// (authorize URL, redirect with a code) at `now`; returns the token
/// request's id.
pub fn to_pending(e: &mut Engine, store: &str, platform: &str, now: i64) -> String {
    let url = match e.handle_ms(url_authorize(store), now) {
        Ok(shopauth::ReplyData::AuthUrl { auth_url }) => auth_url,
        other => panic!("authorize: {other:?}"),
    };
    let query = format!("code=code-{store}&state={}", state_of(&url));
    e.handle_ms(
        input(json!({"type": "oauth_redirect", "platform": platform, "query": query})),
        now,
    )
    .expect("redirect");
    let mut id = None;
    while let Some(o) = e.poll_output() {
        if let Output::HttpRequest(r) = o {
            id = Some(r.request_id);
        }
    }
    id.expect("a token request")
}

pub fn http_response(request_id: &str, body: &str) -> shopauth::Input {
    input(
        json!({"type": "http_response", "request_id": request_id, "status": 200,
                 "headers": [["content-type", "application/json"]], "body": body}),
    )
}

/// Registers and authorizes `n` oauth2 stores on `platform`; store `i`
/// gets its tokens at `at(i)`. Returns the time of the last.
pub fn oauth2_population(
    e: &mut Engine,
    n: usize,
    platform: &str,
    at: impl Fn(usize) -> i64,
) -> i64 {
    let mut last = 0;
    for i in 0..n {
        let id = store_id(i);
        let now = at(i);
        e.handle_ms(register(&id, platform), now).expect("register");
        let req = to_pending(e, &id, platform, now);
        e.handle_ms(http_response(&req, TOKEN_BODY), now)
            .expect("token answer");
        drain(e);
        last = now;
    }
    last
}

/// Human-readable count: 10k, 100k, 1M.
pub fn label(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Whether the opt-in 1M-store runs are on.
pub fn million() -> bool {
    std::env::var("SHOPAUTH_BENCH_1M").is_ok_and(|v| v == "1")
}

/// Median of a sample (sorts it).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `shopauth_engine_restore` of `snap` into a fresh engine (no 16 MiB
/// limit): the time of the restore call alone.
#[allow(dead_code)]
pub fn ffi_restore(snap: &str) -> std::time::Duration {
    use shopauth::ffi::*;
    let config = config(100);
    // SAFETY: valid pointers and lengths; the engine is freed once.
    unsafe {
        let mut e = std::ptr::null_mut();
        let s = shopauth_engine_new(
            config.as_ptr().cast(),
            config.len(),
            &mut e,
            std::ptr::null_mut(),
        );
        assert_eq!(s, shopauth_status::SHOPAUTH_OK);
        let t = std::time::Instant::now();
        let s = shopauth_engine_restore(e, snap.as_ptr().cast(), snap.len(), std::ptr::null_mut());
        let d = t.elapsed();
        assert_eq!(s, shopauth_status::SHOPAUTH_OK);
        shopauth_engine_free(e);
        d
    }
}
