//! Reference-model property tests (proptest-state-machine), in the style of
//! Firezone connlib's `tunnel/src/tests`: a naive model (`model/reference.rs`),
//! transitions drawn from the model's state (`model/transition.rs`), and the
//! engine as system under test (`model/sut.rs`). Shrinking turns a failure
//! into a short script of transitions.
//!
//! - `engine_matches_reference_model`: every input of SPEC §3 (valid and
//!   invalid, including the §4 authorize rules in order), time (small and
//!   large ticks, jumps to the next deadline, runs of jumps, a `now` in the
//!   past) and snapshot/restore steps (into the same or a fresh engine, and
//!   back to an older snapshot). After every step the reply (code, kind,
//!   data), the outputs (per store, in order: transitions, requests,
//!   redirects, notification bodies and signatures), `poll_timeout`, and
//!   every store's `query` view and `credentials` are compared with the
//!   model; the claim invariants (no seller or credential held by two
//!   stores, claims only in requested/pending/authorized/expired), `seq`
//!   rising by one per store and request ids never repeating are checked on
//!   the engine's own outputs.
//! - `two_engines_fed_the_same_script_agree`: determinism (byte-identical
//!   replies, outputs, `poll_timeout` and snapshots at every step).
//! - `restored_engine_behaves_like_the_original`: an engine restored from a
//!   snapshot taken at a random point behaves like the original afterwards,
//!   modulo the re-sent requests (new ids, re-signed) — compared until one
//!   of the original's fork-time requests could time out (its re-sent copy
//!   times out later, which the spec allows).
//!
//! Environment:
//! - `SHOPAUTH_MODEL_CASES` (default 512): cases of the model test; the two
//!   twin tests run a quarter of it each. Sequences have up to 40
//!   transitions. The default runs in well under a minute in debug.
//! - `SHOPAUTH_MODEL_SKIP=rollback,resend_snapshot`: leave out the steps
//!   that run into the known discrepancies below, to look past them locally.
//! - `SHOPAUTH_MODEL_STATS=1`: write what the runs reached to
//!   `$TMPDIR/shopauth-model-stats.txt` (to check the generator's reach).
//!
//! Known discrepancies with the spec have their own minimal scripts at the
//! bottom of this file.

#[path = "model/reference.rs"]
mod reference;
#[path = "model/sut.rs"]
mod sut;
#[path = "model/transition.rs"]
mod transition;

use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use reference::{AuthReq, Info, Input, Model, RegisterReq};
use sut::{Sut, Twin};
use transition::{ForkMachine, Machine, Transition, When};

fn cases(divisor: u32) -> u32 {
    let n = std::env::var("SHOPAUTH_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(512);
    (n / divisor).max(1)
}

fn config(divisor: u32) -> Config {
    Config {
        cases: cases(divisor),
        max_shrink_iters: 20_000,
        // bounded, so that a failing run stays short (the script is still
        // minimal in practice)
        max_shrink_time: 15_000,
        failure_persistence: None,
        ..Config::default()
    }
}

struct ModelTest;

impl StateMachineTest for ModelTest {
    type SystemUnderTest = Sut;
    type Reference = Machine;

    fn init_test(m: &Model) -> Sut {
        Sut::for_model(m)
    }

    fn apply(mut sut: Sut, model: &Model, t: Transition) -> Sut {
        sut.apply(model, &t);
        sut
    }

    fn teardown(_: Sut) {
        sut::print_stats();
    }
}

struct DeterminismTest;

impl StateMachineTest for DeterminismTest {
    type SystemUnderTest = Sut;
    type Reference = Machine;

    fn init_test(m: &Model) -> Sut {
        Sut::for_model_with(m, Some(Twin::Same(sut::new_engine())))
    }

    fn apply(mut sut: Sut, model: &Model, t: Transition) -> Sut {
        sut.apply(model, &t);
        sut
    }
}

struct EquivalenceTest;

impl StateMachineTest for EquivalenceTest {
    type SystemUnderTest = Sut;
    type Reference = ForkMachine;

    fn init_test(m: &Model) -> Sut {
        Sut::for_model(m)
    }

    fn apply(mut sut: Sut, model: &Model, t: Transition) -> Sut {
        if matches!(t, Transition::Fork) && sut.twin.is_some() {
            // one fork per case: later ones are no-ops
            return sut;
        }
        sut.apply(model, &t);
        sut
    }

    fn teardown(_: Sut) {
        sut::print_stats();
    }
}

prop_state_machine! {
    #![proptest_config(config(1))]
    #[test]
    fn engine_matches_reference_model(sequential 1..40 => ModelTest);
}

prop_state_machine! {
    #![proptest_config(config(4))]
    #[test]
    fn two_engines_fed_the_same_script_agree(sequential 1..40 => DeterminismTest);
}

prop_state_machine! {
    #![proptest_config(config(4))]
    #[test]
    fn restored_engine_behaves_like_the_original(sequential 1..40 => EquivalenceTest);
}

// ------------------------------------------------------------------ scripts

/// Runs a fixed script through the model and the engine, with every check
/// of the property test (for discrepancies found by it).
fn run_script(script: &[Transition]) -> Model {
    let mut model = Model::new();
    let mut sut = Sut::new();
    for t in script {
        assert!(
            transition::preconditions(&model, t),
            "script step {t:?} is not applicable"
        );
        model = <Machine as ReferenceStateMachine>::apply(model, t);
        sut.apply(&model, t);
    }
    model
}

/// A store's state and `last_error` reason in the model.
fn model_state(m: &Model, store: &str) -> (reference::St, Option<&'static str>) {
    let s = m.live.stores.iter().find(|s| s.id == store).expect("store");
    (s.state, s.last_error)
}

fn now(input: Input) -> Transition {
    Transition::Input {
        when: When::Now,
        input,
    }
}

fn register(store: &str, platform: &str) -> Transition {
    now(Input::Register(RegisterReq {
        client: "c1".into(),
        store: store.into(),
        platform: platform.into(),
        notify_url: None,
        notify_secret: None,
    }))
}

fn authorize_pair(store: &str, key: &str, secret: &str) -> Transition {
    now(Input::Authorize(AuthReq {
        client: "c1".into(),
        store: store.into(),
        auth_type: Some("KEY".into()),
        seller: None,
        info: Some(Info {
            token: None,
            api_key: Some(key.into()),
            api_secret: Some(secret.into()),
        }),
        redirect_url: None,
    }))
}

/// SPEC §3 "Snapshot and restore": the snapshot holds the whole state,
/// open requests included, and requests open at snapshot time are sent
/// again after a restore. Regression (found by the model): a snapshot taken
/// between a restore and the next call lost the requests still waiting to
/// be sent again, leaving a KEY store `pending` for ever. The re-send marks
/// now live in the store records.
#[test]
fn a_snapshot_taken_right_after_a_restore_keeps_the_requests_to_send_again() {
    run_script(&[
        register("s0", "vkey"),
        authorize_pair("s0", "k1", "x1"),
        Transition::SnapRestore { fresh: false },
        Transition::SnapRestore { fresh: false },
        Transition::Tick(0),
    ]);
}

/// SPEC §3: request ids are unique for the engine's life and never repeat
/// across a restore. Regression (found by the model): restoring the same
/// snapshot twice into one engine re-sent under the same id both times.
/// Restoring now never moves an engine's counters backwards.
#[test]
fn request_ids_never_repeat_after_restoring_one_snapshot_twice() {
    run_script(&[
        register("s0", "vkey"),
        authorize_pair("s0", "k1", "x1"),
        Transition::Save,
        Transition::Rollback,
        Transition::Tick(0),
        Transition::Rollback,
        Transition::Tick(0),
    ]);
}

/// Spec §3 notifications: a notification is tried a last time exactly 24 h
/// after it was produced, then abandoned (`notify_abandoned`), also when the
/// store's token expired meanwhile. Found by the model.
#[test]
fn a_notification_is_abandoned_after_24_hours_beside_an_expiry() {
    let auth = |store: &str| {
        now(Input::Authorize(AuthReq {
            client: "c1".into(),
            store: store.into(),
            auth_type: Some("URL".into()),
            seller: None,
            info: None,
            redirect_url: None,
        }))
    };
    run_script(&[
        register("s1", "myshop"),
        now(Input::Register(RegisterReq {
            client: "c1".into(),
            store: "s0".into(),
            platform: "myshop".into(),
            notify_url: Some("https://biz.example/notify".into()),
            notify_secret: None,
        })),
        auth("s1"),
        auth("s0"),
        now(Input::Redirect(reference::RedirectReq {
            nonce: reference::NonceSel::Serial(2),
            platform: reference::PlatSel::Own,
            code: Some("code-936".into()),
            error: None,
            seller: None,
            as_query: false,
        })),
        now(Input::Answer {
            req: reference::ReqRef {
                uid: 1,
                class: reference::Class::Work,
                n: 1,
            },
            answer: reference::Answer::Response {
                status: 200,
                body: reference::Body::Token(reference::TokenOk {
                    access: "AT0".into(),
                    refresh: None,
                    expires_in: Some(reference::Num {
                        v: 60,
                        string: false,
                    }),
                    refresh_expires_in: None,
                    sellers: None,
                }),
            },
        }),
        Transition::Tick(86_400_000),
    ]);
}

fn url_authorize(store: &str, seller: Option<&str>) -> Transition {
    now(Input::Authorize(AuthReq {
        client: "c1".into(),
        store: store.into(),
        auth_type: Some("URL".into()),
        seller: seller.map(str::to_owned),
        info: None,
        redirect_url: Some("https://biz.example/r".into()),
    }))
}

fn come_back(serial: u64) -> Transition {
    now(Input::Redirect(reference::RedirectReq {
        nonce: reference::NonceSel::Serial(serial),
        platform: reference::PlatSel::Own,
        code: Some("code-1".into()),
        error: None,
        seller: None,
        as_query: true,
    }))
}

fn answer(uid: u32, n: u32, status: u16, body: reference::Body) -> Transition {
    now(Input::Answer {
        req: reference::ReqRef {
            uid,
            class: reference::Class::Work,
            n,
        },
        answer: reference::Answer::Response { status, body },
    })
}

fn tiktok_token(open_id: Option<&str>, expires: i64, refresh: i64) -> reference::Body {
    let num = |v| Some(reference::Num { v, string: false });
    reference::Body::Token(reference::TokenOk {
        access: "AT0".into(),
        refresh: Some("RT0".into()),
        expires_in: num(expires),
        refresh_expires_in: num(refresh),
        sellers: open_id.map(|s| (false, vec![s.to_owned()])),
    })
}

/// SPEC §5.5 in the model: TikTok's absolute expiries (rendered as Unix
/// seconds), its `open_id` seller (a second store on it fails
/// `seller_id_taken`), a create answer without `open_id` retried, and
/// 36004001 on refresh → `expired` (`refresh_rejected`).
#[test]
fn tiktok_shop_scripts_agree_with_the_model() {
    let m = run_script(&[
        register("s0", "tiktok_shop"),
        register("s1", "tiktok_shop"),
        url_authorize("s0", None),
        url_authorize("s1", None),
        come_back(1),
        come_back(2),
        answer(0, 1, 200, tiktok_token(None, 3600, 7200)),
        Transition::Tick(1_500),
        answer(0, 2, 200, tiktok_token(Some("S1"), 3600, 7200)),
        answer(1, 1, 200, tiktok_token(Some("S1"), 3600, 7200)),
        now(Input::TokenRejected {
            client: "c1".into(),
            store: "s0".into(),
        }),
        answer(0, 3, 200, reference::Body::TtErr(36004001)),
    ]);
    assert_eq!(
        model_state(&m, "s0"),
        (reference::St::Expired, Some("refresh_rejected"))
    );
    assert_eq!(
        model_state(&m, "s1"),
        (reference::St::Failed, Some("seller_id_taken"))
    );
}

/// Shopify in the model: the handle is required and compared
/// case-insensitively, and an unsigned callback is `invalid_state`.
#[test]
fn shopify_scripts_agree_with_the_model() {
    let m = run_script(&[
        register("s0", "shopify"),
        register("s1", "shopify"),
        url_authorize("s0", None),
        url_authorize("s0", Some("shop-a")),
        url_authorize("s1", Some("SHOP-A")),
        come_back(1),
    ]);
    assert_eq!(model_state(&m, "s0").0, reference::St::Requested);
    assert_eq!(model_state(&m, "s1").0, reference::St::Unauthorized);
}
