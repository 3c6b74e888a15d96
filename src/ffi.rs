//! The C ABI (spec §6): an opaque `shopauth_engine`, one status enum, and
//! functions that take pointer + length and hand out NUL-terminated strings
//! the caller frees with `shopauth_string_free`. This is the only module
//! with `unsafe`.
//!
//! Every export runs inside `boundary`, which turns a panic into
//! `SHOPAUTH_PANIC`; the engine's mutex is then poisoned and every later
//! call answers `SHOPAUTH_POISONED`. Every pointer is checked for NULL
//! before use. Dangling pointers, wrong lengths and double frees cannot be
//! detected and are the caller's bugs.

#![allow(non_camel_case_types)]

use crate::engine::{Engine, HandleStatus};
use crate::error::{LoadError, RestoreError};
use crate::fleet::Route;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

/// Inputs larger than this are `SHOPAUTH_INVALID_ARGUMENT`.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// The result of every call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum shopauth_status {
    /// Accepted; `*reply` holds code 200.
    SHOPAUTH_OK = 0,
    /// Refused by a rule; `*reply` holds the error; nothing changed.
    SHOPAUTH_REJECTED = 1,
    /// `poll_output`: nothing queued.
    SHOPAUTH_EMPTY = 2,
    /// NULL where a pointer is needed, bad UTF-8, not a JSON object, no or unknown type, input over 16 MiB.
    SHOPAUTH_INVALID_ARGUMENT = 3,
    /// An internal bug was caught at the boundary; the engine is now poisoned.
    SHOPAUTH_PANIC = 4,
    /// The engine panicked earlier and refuses further use (free it).
    SHOPAUTH_POISONED = 5,
}

use shopauth_status::*;

/// The opaque engine handle.
pub struct shopauth_engine {
    inner: Mutex<Locked>,
}

/// What the engine's lock guards: the engine, and a buffer the texts of
/// `handle_drain` and `poll_outputs` are written into before they are
/// copied out at their exact size (one allocation per text, of a size
/// malloc's per-thread caches can serve again, and no growth by doubling).
struct Locked {
    engine: Engine,
    scratch: Vec<u8>,
}

static VERSION: &[u8] = concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes();

fn boundary(f: impl FnOnce() -> shopauth_status) -> shopauth_status {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(SHOPAUTH_PANIC)
}

/// Hands a Rust string to C (JSON texts never hold a NUL; one would be cut there).
fn to_c(s: String) -> *mut c_char {
    to_c_bytes(s.into_bytes()).into_raw()
}

/// Writes `s` to `out` if `out` is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
unsafe fn put(out: *mut *mut c_char, s: String) {
    if !out.is_null() {
        // SAFETY: the caller promises `out` is valid for writes when non-NULL.
        unsafe { *out = to_c(s) };
    }
}

/// Sets `*out = NULL` if `out` is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
unsafe fn clear(out: *mut *mut c_char) {
    if !out.is_null() {
        // SAFETY: as above.
        unsafe { *out = std::ptr::null_mut() };
    }
}

/// The body of an export that hands out one text: refuses a NULL `out`,
/// clears it, runs `f` on the engine and hands its text out.
///
/// # Safety
/// `engine` is NULL or live; `out` is NULL or valid for a pointer write.
unsafe fn text_out(
    engine: *const shopauth_engine,
    out: *mut *mut c_char,
    f: impl FnOnce(&mut Engine) -> String,
) -> shopauth_status {
    if out.is_null() {
        return SHOPAUTH_INVALID_ARGUMENT;
    }
    // SAFETY: non-NULL, valid for writes per the contract.
    unsafe { clear(out) };
    // SAFETY: per the function's contract.
    unsafe {
        with_engine(engine, |e| {
            put(out, f(e));
            SHOPAUTH_OK
        })
    }
}

/// Borrows `len` bytes at `ptr` as UTF-8, at most [`MAX_INPUT_BYTES`]
/// (inputs and configurations).
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes.
unsafe fn text<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, &'static str> {
    if len > MAX_INPUT_BYTES && !ptr.is_null() {
        return Err("input is larger than 16 MiB");
    }
    // SAFETY: per the function's contract.
    unsafe { any_text(ptr, len) }
}

/// Borrows `len` bytes at `ptr` as UTF-8, of any length (snapshots and
/// store records: as large as the host's memory allows, spec §3).
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes.
unsafe fn any_text<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, &'static str> {
    if ptr.is_null() {
        return Err("input pointer is NULL");
    }
    // SAFETY: non-NULL, and the caller promises `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|_| "input is not valid UTF-8")
}

fn invalid_reply(why: &str) -> String {
    crate::message::reply_json(&Err(crate::error::Refusal::illegal("input", why)))
}

/// The library version, a static NUL-terminated string (never freed).
#[unsafe(no_mangle)]
pub extern "C" fn shopauth_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// Builds an engine from a configuration JSON text. On refusal `*error_out`
/// (if not NULL) receives a message naming the bad field.
///
/// # Safety
/// `config` is NULL or valid for `config_len` bytes; `engine_out` and
/// `error_out` are NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_new(
    config: *const c_char,
    config_len: usize,
    engine_out: *mut *mut shopauth_engine,
    error_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        // SAFETY: per the function's contract.
        unsafe { clear(error_out) };
        if engine_out.is_null() {
            // SAFETY: per the function's contract.
            unsafe { put(error_out, "engine_out is NULL".into()) };
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL and valid for writes per the contract.
        unsafe { *engine_out = std::ptr::null_mut() };
        // SAFETY: per the function's contract.
        let text = match unsafe { text(config, config_len) } {
            Ok(t) => t,
            Err(why) => {
                // SAFETY: per the function's contract.
                unsafe { put(error_out, why.into()) };
                return SHOPAUTH_INVALID_ARGUMENT;
            }
        };
        match Engine::from_config_json(text) {
            Ok(engine) => {
                let handle = Box::new(shopauth_engine {
                    inner: Mutex::new(Locked {
                        engine,
                        scratch: Vec::new(),
                    }),
                });
                // SAFETY: checked non-NULL above.
                unsafe { *engine_out = Box::into_raw(handle) };
                SHOPAUTH_OK
            }
            Err(e) => {
                // SAFETY: per the function's contract.
                unsafe { put(error_out, e.to_string()) };
                SHOPAUTH_REJECTED
            }
        }
    })
}

/// Frees an engine (NULL is ignored).
///
/// # Safety
/// `engine` is NULL or a pointer from `shopauth_engine_new` not yet freed,
/// and no other thread is using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_free(engine: *mut shopauth_engine) {
    let _ = boundary(|| {
        if !engine.is_null() {
            // SAFETY: the pointer came from Box::into_raw and is freed once.
            drop(unsafe { Box::from_raw(engine) });
        }
        SHOPAUTH_OK
    });
}

/// Runs `f` on the locked engine; NULL → INVALID_ARGUMENT, poisoned → POISONED.
///
/// # Safety
/// `engine` is NULL or a live engine pointer.
unsafe fn with_engine(
    engine: *const shopauth_engine,
    f: impl FnOnce(&mut Engine) -> shopauth_status,
) -> shopauth_status {
    // SAFETY: non-NULL engine pointers are live per the caller's contract.
    let Some(handle) = (unsafe { engine.as_ref() }) else {
        return SHOPAUTH_INVALID_ARGUMENT;
    };
    match handle.inner.lock() {
        Ok(mut guard) => f(&mut guard.engine),
        Err(_) => SHOPAUTH_POISONED,
    }
}

/// [`with_engine`] with the scratch buffer too.
///
/// # Safety
/// `engine` is NULL or a live engine pointer.
unsafe fn with_locked(
    engine: *const shopauth_engine,
    f: impl FnOnce(&mut Engine, &mut Vec<u8>) -> shopauth_status,
) -> shopauth_status {
    // SAFETY: non-NULL engine pointers are live per the caller's contract.
    let Some(handle) = (unsafe { engine.as_ref() }) else {
        return SHOPAUTH_INVALID_ARGUMENT;
    };
    match handle.inner.lock() {
        Ok(mut guard) => {
            let Locked { engine, scratch } = &mut *guard;
            f(engine, scratch)
        }
        Err(_) => SHOPAUTH_POISONED,
    }
}

/// The text in `scratch` as a C string of its exact size (cut at a NUL if
/// it holds one); `scratch` is emptied and keeps its capacity (at most
/// 1 MiB of it, so one huge text does not stay held).
fn from_scratch(scratch: &mut Vec<u8>) -> CString {
    let mut v = Vec::with_capacity(scratch.len() + 1);
    v.extend_from_slice(scratch);
    scratch.clear();
    if scratch.capacity() > 1 << 20 {
        *scratch = Vec::new();
    }
    to_c_bytes(v)
}

/// Applies one JSON input at `now_ms`; `*reply_out` receives the reply
/// envelope (also for INVALID_ARGUMENT, as code 900002).
///
/// # Safety
/// `engine` is NULL or live; `input` is NULL or valid for `input_len`
/// bytes; `reply_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_handle(
    engine: *mut shopauth_engine,
    input: *const c_char,
    input_len: usize,
    now_ms: i64,
    reply_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        if reply_out.is_null() {
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL, valid for writes per the contract.
        unsafe { clear(reply_out) };
        if engine.is_null() {
            // SAFETY: as above.
            unsafe { put(reply_out, invalid_reply("engine is NULL")) };
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: per the function's contract.
        let text = match unsafe { text(input, input_len) } {
            Ok(t) => t,
            Err(why) => {
                // Poisoned engines write no reply.
                // SAFETY: engine is non-NULL and live.
                if unsafe { with_engine(engine, |_| SHOPAUTH_OK) } == SHOPAUTH_POISONED {
                    return SHOPAUTH_POISONED;
                }
                // SAFETY: as above.
                unsafe { put(reply_out, invalid_reply(why)) };
                return SHOPAUTH_INVALID_ARGUMENT;
            }
        };
        // SAFETY: engine is non-NULL and live.
        unsafe {
            with_engine(engine, |e| {
                #[cfg(feature = "fault-injection")]
                if text == r#"{"type":"__panic__"}"# {
                    panic!("fault injection");
                }
                let (status, reply) = e.handle_json(text, now_ms);
                put(reply_out, reply);
                match status {
                    HandleStatus::Ok => SHOPAUTH_OK,
                    HandleStatus::Rejected => SHOPAUTH_REJECTED,
                    HandleStatus::InvalidArgument => SHOPAUTH_INVALID_ARGUMENT,
                }
            })
        }
    })
}

/// The text [`shopauth_engine_handle_drain`] hands out: the reply and every
/// queued output (drained) as `{"reply":…,"outputs":[…]}`, written into
/// `buf`.
fn reply_and_outputs(reply: &str, e: Option<&mut Engine>, buf: &mut Vec<u8>) {
    buf.extend_from_slice(br#"{"reply":"#);
    buf.extend_from_slice(reply.as_bytes());
    buf.extend_from_slice(br#","outputs":"#);
    match e {
        Some(e) => e.drain_outputs_json_into(buf),
        None => buf.extend_from_slice(b"[]"),
    }
    buf.extend_from_slice(b"}");
}

/// Hands out `v` as a C string, cut at a NUL if it holds one (one scan
/// when it holds none, as JSON texts never do).
fn to_c_bytes(mut v: Vec<u8>) -> CString {
    v.push(0);
    match CString::from_vec_with_nul(v) {
        Ok(c) => c,
        Err(e) => {
            let mut v = e.into_bytes();
            let n = v.iter().position(|&b| b == 0).expect("holds a NUL");
            v.truncate(n + 1);
            CString::from_vec_with_nul(v).expect("one NUL, at the end")
        }
    }
}

/// Writes `text` to `out` and its length (without the NUL) to `len_out`
/// when that is not NULL.
///
/// # Safety
/// `out` is valid for a pointer write; `len_out` is NULL or valid for a write.
unsafe fn put_with_len(out: *mut *mut c_char, len_out: *mut usize, text: CString) {
    if !len_out.is_null() {
        // SAFETY: non-NULL and valid for writes per the contract.
        unsafe { *len_out = text.as_bytes().len() };
    }
    // SAFETY: valid for writes per the contract.
    unsafe { *out = text.into_raw() };
}

/// [`shopauth_engine_handle`] and [`shopauth_engine_poll_outputs`] in one
/// call: applies one JSON input at `now_ms`, then drains every queued
/// output; `*out` receives `{"reply":<envelope>,"outputs":[…]}` (the same
/// envelope and the same outputs, oldest first, as the two calls would
/// hand out) and `*out_len`, when `out_len` is not NULL, its length in
/// bytes without the NUL. The status is `handle`'s; for INVALID_ARGUMENT
/// the input is not applied (code 900002), yet what was queued before is
/// drained all the same (nothing for a NULL engine). A NULL `out` is
/// INVALID_ARGUMENT and nothing is applied or drained; a poisoned engine
/// writes nothing.
///
/// # Safety
/// `engine` is NULL or live; `input` is NULL or valid for `input_len`
/// bytes; `out` is NULL or valid for a pointer write; `out_len` is NULL or
/// valid for a `size_t` write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_handle_drain(
    engine: *mut shopauth_engine,
    input: *const c_char,
    input_len: usize,
    now_ms: i64,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> shopauth_status {
    boundary(|| {
        if out.is_null() {
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL, valid for writes per the contract.
        unsafe { clear(out) };
        if !out_len.is_null() {
            // SAFETY: non-NULL and valid for writes per the contract.
            unsafe { *out_len = 0 };
        }
        if engine.is_null() {
            let mut buf = Vec::new();
            reply_and_outputs(&invalid_reply("engine is NULL"), None, &mut buf);
            // SAFETY: `out` checked above; `out_len` per the contract.
            unsafe { put_with_len(out, out_len, from_scratch(&mut buf)) };
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: per the function's contract.
        let read = unsafe { text(input, input_len) };
        // SAFETY: engine is non-NULL and live.
        unsafe {
            with_locked(engine, |e, scratch| {
                let (status, reply) = match read {
                    Ok(text) => {
                        #[cfg(feature = "fault-injection")]
                        if text == r#"{"type":"__panic__"}"# {
                            panic!("fault injection");
                        }
                        let (status, reply) = e.handle_json(text, now_ms);
                        let status = match status {
                            HandleStatus::Ok => SHOPAUTH_OK,
                            HandleStatus::Rejected => SHOPAUTH_REJECTED,
                            HandleStatus::InvalidArgument => SHOPAUTH_INVALID_ARGUMENT,
                        };
                        (status, reply)
                    }
                    Err(why) => (SHOPAUTH_INVALID_ARGUMENT, invalid_reply(why)),
                };
                reply_and_outputs(&reply, Some(e), scratch);
                put_with_len(out, out_len, from_scratch(scratch));
                status
            })
        }
    })
}

/// Fires what is due at `now_ms`.
///
/// # Safety
/// `engine` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_handle_timeout(
    engine: *mut shopauth_engine,
    now_ms: i64,
) -> shopauth_status {
    boundary(|| {
        // SAFETY: per the function's contract.
        unsafe {
            with_engine(engine, |e| {
                e.handle_timeout_ms(now_ms);
                SHOPAUTH_OK
            })
        }
    })
}

/// Takes the next queued output (`SHOPAUTH_EMPTY` when none).
///
/// # Safety
/// `engine` is NULL or live; `output_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_poll_output(
    engine: *mut shopauth_engine,
    output_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        if output_out.is_null() {
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL, valid for writes per the contract.
        unsafe { clear(output_out) };
        // SAFETY: per the function's contract.
        unsafe {
            with_engine(engine, |e| match e.poll_output() {
                Some(o) => {
                    put(output_out, o.to_json());
                    SHOPAUTH_OK
                }
                None => SHOPAUTH_EMPTY,
            })
        }
    })
}

/// Takes every queued output as one JSON array (`[]` when none).
///
/// # Safety
/// `engine` is NULL or live; `outputs_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_poll_outputs(
    engine: *mut shopauth_engine,
    outputs_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        if outputs_out.is_null() {
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL, valid for writes per the contract.
        unsafe { clear(outputs_out) };
        // SAFETY: per the function's contract.
        unsafe {
            with_locked(engine, |e, scratch| {
                e.drain_outputs_json_into(scratch);
                // SAFETY: non-NULL (checked above) and valid for writes.
                *outputs_out = from_scratch(scratch).into_raw();
                SHOPAUTH_OK
            })
        }
    })
}

/// When `handle_timeout` must next be called (ms), or -1 when never, for a
/// NULL engine, or for a poisoned one.
///
/// # Safety
/// `engine` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_poll_timeout(engine: *const shopauth_engine) -> i64 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: non-NULL engine pointers are live per the contract.
        let Some(handle) = (unsafe { engine.as_ref() }) else {
            return -1;
        };
        match handle.inner.lock() {
            Ok(l) => l.engine.poll_timeout_ms().unwrap_or(-1),
            Err(_) => -1,
        }
    }))
    .unwrap_or(-1)
}

/// The whole state as JSON.
///
/// # Safety
/// `engine` is NULL or live; `snapshot_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_snapshot(
    engine: *const shopauth_engine,
    snapshot_out: *mut *mut c_char,
) -> shopauth_status {
    // SAFETY: per the function's contract.
    boundary(|| unsafe { text_out(engine, snapshot_out, |e: &mut Engine| e.snapshot()) })
}

/// Every store whose record changed since the previous take (or since
/// `new`, `restore` or `load`), sorted by `store_id`, with the engine
/// header, as one JSON text (spec §10). Its cost is proportional to the
/// changed stores.
///
/// # Safety
/// `engine` is NULL or live; `changes_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_take_changes(
    engine: *mut shopauth_engine,
    changes_out: *mut *mut c_char,
) -> shopauth_status {
    // SAFETY: per the function's contract.
    boundary(|| unsafe { text_out(engine, changes_out, Engine::take_changes) })
}

/// The body of an export that takes one text and may refuse it: clears
/// `error_out`, answers INVALID_ARGUMENT (with a message) for a NULL engine
/// or text and for bad UTF-8 — or, when `limited`, for a text over
/// [`MAX_INPUT_BYTES`] — then runs `f` on the locked engine and hands out
/// the message of its refusal.
///
/// # Safety
/// `engine` is NULL or live; `ptr` is NULL or valid for `len` bytes;
/// `error_out` is NULL or valid for a pointer write.
unsafe fn text_in(
    engine: *mut shopauth_engine,
    ptr: *const c_char,
    len: usize,
    limited: bool,
    error_out: *mut *mut c_char,
    f: impl FnOnce(&mut Engine, &str) -> Result<(), (shopauth_status, String)>,
) -> shopauth_status {
    // SAFETY: per the function's contract.
    unsafe { clear(error_out) };
    if engine.is_null() {
        // SAFETY: per the function's contract.
        unsafe { put(error_out, "engine is NULL".into()) };
        return SHOPAUTH_INVALID_ARGUMENT;
    }
    // SAFETY: per the function's contract.
    let read = unsafe {
        if limited {
            text(ptr, len)
        } else {
            any_text(ptr, len)
        }
    };
    let text = match read {
        Ok(t) => t,
        Err(why) => {
            // SAFETY: per the function's contract.
            unsafe { put(error_out, why.into()) };
            return SHOPAUTH_INVALID_ARGUMENT;
        }
    };
    // SAFETY: engine is non-NULL and live.
    unsafe {
        with_engine(engine, |e| match f(e, text) {
            Ok(()) => SHOPAUTH_OK,
            Err((status, message)) => {
                put(error_out, message);
                status
            }
        })
    }
}

/// Replaces the engine's state with a snapshot's. A snapshot that does not
/// parse is INVALID_ARGUMENT; another version or configuration is REJECTED;
/// the engine is unchanged either way.
///
/// # Safety
/// `engine` is NULL or live; `snapshot` is NULL or valid for `snapshot_len`
/// bytes; `error_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_restore(
    engine: *mut shopauth_engine,
    snapshot: *const c_char,
    snapshot_len: usize,
    error_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        // SAFETY: per the function's contract; snapshots have no size limit.
        unsafe {
            text_in(engine, snapshot, snapshot_len, false, error_out, |e, t| {
                e.restore(t).map_err(|err| {
                    let status = match err {
                        RestoreError::Malformed(_) => SHOPAUTH_INVALID_ARGUMENT,
                        _ => SHOPAUTH_REJECTED,
                    };
                    (status, err.to_string())
                })
            })
        }
    })
}

/// A refused `load` / `unload`: INVALID_ARGUMENT for a text not of its
/// shape, REJECTED for a rule.
fn load_refused(err: LoadError) -> (shopauth_status, String) {
    let status = match err {
        LoadError::Malformed(_) => SHOPAUTH_INVALID_ARGUMENT,
        _ => SHOPAUTH_REJECTED,
    };
    (status, err.to_string())
}

/// Adds stores and foreign claims to a running engine (spec §11):
/// `{"stores": [record, …], "foreign_claims": [claim, …]}`, each record a
/// `record` of a `take_changes` entry, each claim `{"kind": "seller",
/// "platform", "seller_id", "store_id"}` or `{"kind": "credential",
/// "fingerprint", "store_id"}`. Loaded stores keep their open requests open
/// under their ids, their timers and nonces. All or nothing: REJECTED (with
/// the rule in `*error_out`) when a store is already loaded, two records
/// share a store id, a record breaks an invariant or is on a platform that
/// is not configured, a claim conflicts with one held here, or a foreign
/// claim names a store that is here; INVALID_ARGUMENT for NULL, bad UTF-8
/// or a text that is not JSON of that shape. Any size (like restore).
///
/// # Safety
/// `engine` is NULL or live; `text` is NULL or valid for `text_len` bytes;
/// `error_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_load(
    engine: *mut shopauth_engine,
    text: *const c_char,
    text_len: usize,
    error_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        // SAFETY: per the function's contract; loads have no size limit.
        unsafe {
            text_in(engine, text, text_len, false, error_out, |e, t| {
                e.load(t).map_err(load_refused)
            })
        }
    })
}

/// Forgets stores and foreign claims (spec §11): `{"store_ids": […],
/// "foreign_claims": [claim, …]}`. No transition, no output, no change
/// entry; store ids and claims this engine does not hold are ignored.
/// INVALID_ARGUMENT for NULL, bad UTF-8, over 16 MiB or a text that is not
/// JSON of that shape; REJECTED for a malformed foreign claim.
///
/// # Safety
/// `engine` is NULL or live; `text` is NULL or valid for `text_len` bytes;
/// `error_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_unload(
    engine: *mut shopauth_engine,
    text: *const c_char,
    text_len: usize,
    error_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        // SAFETY: per the function's contract.
        unsafe {
            text_in(engine, text, text_len, true, error_out, |e, t| {
                e.unload(t).map_err(load_refused)
            })
        }
    })
}

/// Names the store an input is for, without changing anything and without
/// the store being loaded (spec §11): `*route_out` receives `{"ref": …,
/// "store_id": …}` — `ref` from the input's `store_id`, the state nonce of
/// an `oauth_redirect` or the request id of an `http_response` /
/// `http_failure`; `store_id` only when the input names it; both null when
/// the input does not tell. OK also then; INVALID_ARGUMENT (with the null
/// route written) for NULL, bad UTF-8, over 16 MiB or a text that is not
/// JSON. A NULL `route_out` is INVALID_ARGUMENT.
///
/// # Safety
/// `engine` is NULL or live; `input` is NULL or valid for `input_len`
/// bytes; `route_out` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_engine_route(
    engine: *const shopauth_engine,
    input: *const c_char,
    input_len: usize,
    route_out: *mut *mut c_char,
) -> shopauth_status {
    boundary(|| {
        if route_out.is_null() {
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: non-NULL, valid for writes per the contract.
        unsafe { clear(route_out) };
        let nowhere = || Route::default().to_json();
        if engine.is_null() {
            // SAFETY: as above.
            unsafe { put(route_out, nowhere()) };
            return SHOPAUTH_INVALID_ARGUMENT;
        }
        // SAFETY: per the function's contract.
        unsafe {
            with_engine(engine, |e| {
                let found = text(input, input_len)
                    .ok()
                    .and_then(|t| e.route_json(t).ok());
                let status = if found.is_some() {
                    SHOPAUTH_OK
                } else {
                    SHOPAUTH_INVALID_ARGUMENT
                };
                put(route_out, found.map_or_else(nowhere, |r| r.to_json()));
                status
            })
        }
    })
}

/// Frees a string handed out by this library (NULL is ignored).
///
/// # Safety
/// `s` is NULL or a string from this library not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn shopauth_string_free(s: *mut c_char) {
    let _ = boundary(|| {
        if !s.is_null() {
            // SAFETY: the pointer came from CString::into_raw and is freed once.
            drop(unsafe { CString::from_raw(s) });
        }
        SHOPAUTH_OK
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_at_a_nul() {
        assert_eq!(to_c_bytes(b"abc".to_vec()).as_bytes(), b"abc");
        assert_eq!(to_c_bytes(b"ab\0c\0".to_vec()).as_bytes(), b"ab");
        assert_eq!(to_c_bytes(Vec::new()).as_bytes(), b"");
    }
}
