//! Seed 000's two ways of telling the business party a result: the
//! `redirect` location for the seller's browser and the notification body
//! POSTed to the store's `notify_url`, with its signature header.
//!
//! What does not live here: delivery, retries and the outbox (`engine`).

use crate::encoding::append_query;
use crate::keys::hmac_hex;
use crate::message::{Reason, State, rfc3339};
use chrono::DateTime;
use serde::Serialize;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-Shopauth-Signature";

/// `auth_status` of a state a notification reports.
pub fn auth_status(to: State) -> Option<&'static str> {
    match to {
        State::Authorized => Some("SUCCESS"),
        State::Failed => Some("FAIL"),
        State::Expired => Some("EXPIRED"),
        State::Revoked => Some("REVOKED"),
        _ => None,
    }
}

/// The redirect location: `redirect_url?client_id=…&store_id=…&seller_id=…&auth_status=…&auth_fail_reason=…`.
pub fn redirect_location(
    redirect_url: &str,
    client_id: &str,
    store_id: &str,
    seller_id: &str,
    reason: Option<Reason>,
) -> String {
    let (status, fail) = match reason {
        None => ("SUCCESS", ""),
        Some(r) => ("FAIL", r.as_str()),
    };
    append_query(
        redirect_url,
        [
            ("client_id", client_id),
            ("store_id", store_id),
            ("seller_id", seller_id),
            ("auth_status", status),
            ("auth_fail_reason", fail),
        ],
    )
}

/// The fields of a notification body, in the order they are written.
#[derive(Serialize)]
pub struct Body<'a> {
    /// The transition's event id.
    pub event_id: &'a str,
    /// The transition's per-store sequence number.
    pub seq: u64,
    /// The business party.
    pub client_id: &'a str,
    /// The store.
    pub store_id: &'a str,
    /// Requested seller, else first learned, else empty.
    pub seller_id: &'a str,
    /// SUCCESS, FAIL, EXPIRED, REVOKED.
    pub auth_status: &'static str,
    /// The reason code or empty.
    pub auth_fail_reason: &'static str,
    /// The attempt.
    pub attempt: u32,
    /// The transition's time.
    pub at: String,
}

impl Body<'_> {
    /// The body text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("notification body serializes")
    }
}

/// Builds the body text.
#[allow(clippy::too_many_arguments)]
pub fn body(
    event_id: &str,
    seq: u64,
    client_id: &str,
    store_id: &str,
    seller_id: &str,
    to: State,
    reason: Option<Reason>,
    attempt: u32,
    at_ms: i64,
) -> Option<String> {
    let auth_status = auth_status(to)?;
    Some(
        Body {
            event_id,
            seq,
            client_id,
            store_id,
            seller_id,
            auth_status,
            auth_fail_reason: reason.map(Reason::as_str).unwrap_or(""),
            attempt,
            at: rfc3339(DateTime::from_timestamp_millis(at_ms).unwrap_or_default()),
        }
        .to_json(),
    )
}

/// The signature header value: lower-case hex HMAC-SHA256 of the body.
pub fn signature(secret: &str, body: &str) -> String {
    hmac_hex(secret.as_bytes(), &[body.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_matches_seed_000() {
        assert_eq!(
            redirect_location(
                "https://biz.example/done?x=1",
                "IT86",
                "sd23",
                "myshop2023",
                None
            ),
            "https://biz.example/done?x=1&client_id=IT86&store_id=sd23&seller_id=myshop2023&auth_status=SUCCESS&auth_fail_reason="
        );
        assert!(
            redirect_location(
                "https://biz.example/done",
                "c",
                "s",
                "",
                Some(Reason::Denied)
            )
            .ends_with(
                "?client_id=c&store_id=s&seller_id=&auth_status=FAIL&auth_fail_reason=denied"
            )
        );
    }

    #[test]
    fn body_and_signature() {
        let b = body(
            "evt-1",
            2,
            "c",
            "s",
            "x",
            State::Expired,
            Some(Reason::TokenExpired),
            1,
            0,
        )
        .unwrap();
        assert_eq!(
            b,
            r#"{"event_id":"evt-1","seq":2,"client_id":"c","store_id":"s","seller_id":"x","auth_status":"EXPIRED","auth_fail_reason":"token_expired","attempt":1,"at":"1970-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(signature("k", "body"), hmac_hex(b"k", &[b"body"]));
        assert_eq!(body("e", 1, "c", "s", "", State::Pending, None, 1, 0), None);
    }
}
