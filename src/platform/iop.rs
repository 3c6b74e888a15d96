//! IOP: Taobao Taiwan and Lazada seller authorization (seed 003). The
//! authorize URL, the signed `/auth/token/create` and `/auth/token/refresh`
//! calls, the token answer (with `user_info` / `country_user_info` sellers)
//! and the classification of IOP error codes.
//!
//! Signing: every parameter but `sign`, sorted by name in byte order,
//! concatenated as name+value after the API path, HMAC-SHA256 keyed by the
//! app secret, upper-case hex. The body carries the same raw values,
//! percent-encoded, so the platform recomputes the same string.
//!
//! What does not live here: refresh timing, retries, claims (the engine's).
//!
//! Also here: its settings (`IopApp`) and the reading of its `apps` entry, and its `Platform` implementation.

use super::{
    Ctx, Malformed, Outcome, Outgoing, Tokens, access_lifetime_s, describe, expiry_after,
    json_answer, json_text, lifetime_s,
};
use crate::config::{
    AppEntry, Profile, app_entry, rate, required_secret, required_text, url_field, url_or,
};
use crate::encoding::{append_query, form};
use crate::error::ConfigError;
use crate::keys::hmac_sha256;
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::Value;

/// API path of token create.
pub const CREATE_PATH: &str = "/auth/token/create";
/// API path of token refresh.
pub const REFRESH_PATH: &str = "/auth/token/refresh";

/// `{authorize}?response_type=code&force_auth=true&redirect_uri=…&client_id=…&state=…[&uuid=…]`.
pub fn authorize_url(app: &IopApp, nonce: &str) -> String {
    let mut p: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("force_auth", "true"),
        ("redirect_uri", &app.redirect_uri),
        ("client_id", &app.app_key),
        ("state", nonce),
    ];
    if let Some(u) = &app.uuid {
        p.push(("uuid", u));
    }
    append_query(&app.authorize_url, p)
}

/// The IOP signature of `params` (any order; `sign` itself is skipped).
pub fn sign(secret: &str, api_path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().filter(|(k, _)| *k != "sign").collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut s = String::with_capacity(256);
    s.push_str(api_path);
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    hex::encode_upper(hmac_sha256(secret.as_bytes(), &[s.as_bytes()]))
}

/// The token create or refresh request.
pub fn build(app: &IopApp, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    let ts = ctx.now.to_string();
    let (path, mut p): (&str, Vec<(&str, &str)>) = if purpose == Purpose::TokenRefresh {
        let rt = ctx
            .tokens
            .and_then(|t| t.refresh.as_ref())
            .map(Secret::expose);
        (REFRESH_PATH, vec![("refresh_token", rt.unwrap_or(""))])
    } else {
        let mut p = vec![("code", ctx.code.unwrap_or(""))];
        if app.send_grant_type {
            p.push(("grantType", "authorization_code"));
        }
        (CREATE_PATH, p)
    };
    p.push(("app_key", &app.app_key));
    p.push(("timestamp", &ts));
    p.push(("sign_method", "sha256"));
    let signature = sign(app.app_secret.expose(), path, &p);
    p.push(("sign", &signature));
    Outgoing {
        method: "POST",
        url: format!("{}{}", app.api_url, path),
        headers: vec![(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded;charset=utf-8".to_owned(),
        )],
        body: Some(form(p)),
    }
}

/// Classifies an IOP error `code` (seed 003 and the IOP error list).
pub fn classify(purpose: Purpose, code: &str, message: String) -> Outcome {
    let refresh = purpose == Purpose::TokenRefresh;
    match code {
        // Throttling and platform trouble: try again.
        "ApiCallLimit"
        | "AppCallLimit"
        | "ServiceTimeout"
        | "ServiceUnavailable"
        | "InternalError"
        | "SystemError"
        | "ISPError"
        | "ISP.ServiceUnavailable" => Outcome::Retry(message),
        // Our request is malformed or our app is misconfigured.
        "IncompleteSignature"
        | "InvalidSignature"
        | "MissingParameter"
        | "InvalidParameter"
        | "MissingAppKey"
        | "InvalidAppKey"
        | "InvalidApiPath"
        | "InvalidTimestamp"
        | "MissingTimestamp"
        | "InvalidSignMethod"
        | "AppWhiteIpLimit"
        | "InsufficientPermission" => Outcome::HostBroken(message),
        // Refresh token dead or refresh not allowed: re-authorization needed.
        "IllegalRefreshToken"
        | "AUTH_TYPE_UNSUPPORTED"
        | "InvalidRefreshToken"
        | "IllegalAccessToken"
        | "RefreshTokenExpired"
            if refresh =>
        {
            Outcome::Rejected(Reason::RefreshRejected, message)
        }
        // InvalidCode and any other refusal of the exchange.
        _ => Outcome::Rejected(
            if refresh {
                Reason::RefreshRejected
            } else {
                Reason::PlatformRejected
            },
            message,
        ),
    }
}

/// Reads a token answer.
pub fn read_token(
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Outcome> {
    let v = json_answer(status, body, "IOP")?;
    let code = json_text(v.get("code")).unwrap_or_else(|| "0".into());
    if code != "0" {
        let msg = describe(
            status,
            &format!(
                "IOP error {code}: {}",
                v.get("message").and_then(Value::as_str).unwrap_or("")
            ),
        );
        return Err(classify(purpose, &code, msg));
    }
    if !(200..300).contains(&status) {
        return Err(Outcome::HostBroken(describe(
            status,
            "IOP refused without an error code",
        )));
    }
    let access = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Outcome::HostBroken(describe(status, "IOP answer has no access_token")))?;
    let now = ctx.now;
    let old = ctx.tokens.filter(|_| purpose == Purpose::TokenRefresh);
    let malformed = |field: &str, e: Malformed| {
        Outcome::Retry(describe(status, &format!("IOP answer: {field} {e}")))
    };
    // Seed 003 always sends `expires_in`; without it (or with 0) the answer
    // is malformed, never "expired now".
    let expires_in = access_lifetime_s(v.get("expires_in"))
        .and_then(|n| n.ok_or(Malformed::Missing))
        .map_err(|e| malformed("expires_in", e))?;
    let refresh_in =
        lifetime_s(v.get("refresh_expires_in")).map_err(|e| malformed("refresh_expires_in", e))?;
    let new_refresh = v
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let (refresh, refresh_expires_at, refreshable) = match old {
        // Seed 003: a refresh resets the access token's life, never the refresh token's.
        Some(o) => {
            let r = new_refresh.map(Secret::new).or_else(|| o.refresh.clone());
            let at = match (o.refresh_expires_at, refresh_in) {
                (Some(old_at), Some(n)) if n > 0 => Some(old_at.min(expiry_after(now, n))),
                (old_at, _) => old_at,
            };
            (r, at, o.refreshable)
        }
        None => {
            let live = refresh_in.unwrap_or(0) > 0 && new_refresh.is_some();
            (
                new_refresh.map(Secret::new),
                live.then(|| expiry_after(now, refresh_in.unwrap_or(0))),
                live,
            )
        }
    };
    let sellers = sellers(&v)
        .ok_or_else(|| {
            Outcome::Retry(describe(
                status,
                "IOP answer: a seller_id is neither text nor a number",
            ))
        })?
        .or_else(|| old.and_then(|t| t.sellers.clone()));
    Ok(Tokens {
        access: Secret::new(access),
        refresh,
        access_expires_at: Some(expiry_after(now, expires_in)),
        refresh_expires_at,
        refreshable,
        obtained_at: now,
        sellers,
    })
}

/// Seller ids of `user_info` / `country_user_info`, as the platform lists
/// them (an entry without `seller_id` names none); `Some(None)` when the
/// answer has neither list, `None` when a `seller_id` is neither text nor a
/// number. Linear; the engine de-duplicates and checks lengths and counts.
fn sellers(v: &Value) -> Option<Option<Vec<String>>> {
    let mut out: Vec<String> = Vec::new();
    let mut any = false;
    for key in ["user_info", "country_user_info"] {
        let list = match v.get(key) {
            Some(Value::Array(a)) => a.as_slice(),
            Some(obj @ Value::Object(_)) => std::slice::from_ref(obj),
            _ => continue,
        };
        any = true;
        for item in list {
            match item.get("seller_id") {
                None | Some(Value::Null) => {}
                Some(id) => out.push(json_text(Some(id))?),
            }
        }
    }
    Some(any.then_some(out))
}

impl super::Platform for IopApp {
    fn flow(&self) -> super::Flow {
        super::Flow::Redirect
    }
    fn authorize_url(&self, a: &super::UrlArgs<'_>) -> String {
        authorize_url(self, a.nonce)
    }
    fn build(&self, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, purpose, ctx)
    }
    fn read(&self, purpose: Purpose, status: u16, body: &str, ctx: &Ctx<'_>) -> Outcome {
        read_token(purpose, status, body, ctx).map_or_else(|o| o, Outcome::Tokens)
    }
    fn secrets(&self) -> Vec<&str> {
        vec![self.app_secret.expose()]
    }
}

/// IOP settings.
#[derive(Debug, Clone)]
pub struct IopApp {
    /// App key.
    pub app_key: String,
    /// App secret.
    pub app_secret: Secret,
    /// Registered callback.
    pub redirect_uri: String,
    /// Optional `uuid`.
    pub uuid: Option<String>,
    /// Authorize endpoint.
    pub authorize_url: String,
    /// API base (`…/rest`).
    pub api_url: String,
    /// Whether token create sends `grantType=authorization_code` (taobao_tw).
    pub send_grant_type: bool,
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of an IOP platform (`apps.taobao_tw`, `apps.lazada`): only these fields apply.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    app_key: Option<String>,
    #[serde(default)]
    app_secret: Option<Secret>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
}

/// Reads the `apps` entry of a built-in IOP platform (`taobao_tw`, `lazada`).
pub(crate) fn profile(name: &str, app: &AppEntry) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let (auth, api) = if name == "lazada" {
        (
            "https://auth.lazada.com/oauth/authorize",
            "https://auth.lazada.com/rest",
        )
    } else {
        (
            "https://auth.taobao.tw/oauth/authorize",
            "https://auth.taobao.tw/rest",
        )
    };
    let app: Entry = app_entry(app, name)?;
    let mut p = Profile::new(
        name,
        Kind::new(IopApp {
            app_key: required_text(&app.app_key, &at("app_key"))?,
            app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
            redirect_uri: url_field(app.redirect_uri.as_deref(), &at("redirect_uri"))?,
            uuid: app.uuid.clone(),
            authorize_url: url_or(app.authorize_url.as_deref(), auth, &at("authorize_url"))?,
            api_url: url_or(app.api_url.as_deref(), api, &at("api_url"))?
                .trim_end_matches('/')
                .to_owned(),
            send_grant_type: name == "taobao_tw",
        }),
        rate(app.rate_limit_per_s, &at("rate_limit_per_s"))?,
        false,
    );
    p.code_ttl_s = 1800;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_vector() {
        let p = [
            ("access_token", "test"),
            ("app_key", "123456"),
            ("order_id", "1234"),
            ("sign_method", "sha256"),
            ("timestamp", "1517820392000"),
        ];
        assert_eq!(
            sign("helloworld", "/order/get", &p),
            "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"
        );
    }

    #[test]
    fn sorting_is_by_bytes_and_ignores_input_order_and_sign() {
        // "a_b" < "ab" in byte order ('_' = 0x5F < 'b' = 0x62); "B" < "a".
        let p1 = [
            ("ab", "1"),
            ("a_b", "2"),
            ("B", "3"),
            ("a", "店"),
            ("sign", "X"),
        ];
        let p2 = [("a", "店"), ("B", "3"), ("a_b", "2"), ("ab", "1")];
        let expected = hex::encode_upper(hmac_sha256(
            b"k",
            &[("/p".to_owned() + "B3" + "a店" + "a_b2" + "ab1").as_bytes()],
        ));
        assert_eq!(sign("k", "/p", &p1), expected);
        assert_eq!(sign("k", "/p", &p2), expected);
    }

    fn app(tw: bool) -> IopApp {
        IopApp {
            app_key: "123456".into(),
            app_secret: Secret::new("helloworld"),
            redirect_uri: "https://host.example/cb/taobao_tw".into(),
            uuid: None,
            authorize_url: "https://auth.taobao.tw/oauth/authorize".into(),
            api_url: "https://auth.taobao.tw/rest".into(),
            send_grant_type: tw,
        }
    }

    fn ctx<'a>(now: i64, code: Option<&'a str>, tokens: Option<&'a Tokens>) -> Ctx<'a> {
        Ctx {
            now,
            seller_id: None,
            code,
            pkce_verifier: None,
            tokens,
            key: None,
            learned: &[],
        }
    }

    #[test]
    fn authorize_url_matches_seed() {
        assert_eq!(
            authorize_url(&app(true), "7_ab"),
            "https://auth.taobao.tw/oauth/authorize?response_type=code&force_auth=true&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Ftaobao_tw&client_id=123456&state=7_ab"
        );
        let mut a = app(true);
        a.uuid = Some("uuid283118319".into());
        assert!(authorize_url(&a, "n").ends_with("&state=n&uuid=uuid283118319"));
    }

    #[test]
    fn create_body_is_signed_over_raw_values() {
        let r = build(
            &app(true),
            Purpose::TokenCreate,
            &ctx(1517820392000, Some("0_Tr+z/8"), None),
        );
        assert_eq!(r.url, "https://auth.taobao.tw/rest/auth/token/create");
        let expected_sign = sign(
            "helloworld",
            CREATE_PATH,
            &[
                ("code", "0_Tr+z/8"),
                ("grantType", "authorization_code"),
                ("app_key", "123456"),
                ("timestamp", "1517820392000"),
                ("sign_method", "sha256"),
            ],
        );
        assert_eq!(
            r.body.unwrap(),
            format!(
                "code=0_Tr%2Bz%2F8&grantType=authorization_code&app_key=123456&timestamp=1517820392000&sign_method=sha256&sign={expected_sign}"
            )
        );
        let lazada = build(&app(false), Purpose::TokenCreate, &ctx(1, Some("c"), None));
        assert!(!lazada.body.unwrap().contains("grantType"));
    }

    #[test]
    fn reads_seed_token_and_sellers() {
        let body = r#"{"access_token":"50000601c30atpedfgu3LVvik87Ixlsvle3mSoB7701ceb156fPunYZ43GBg","refresh_token":"500016000300bwa2WteaQyfwBMnPxurcA0mXGhQdTt18356663CfcDTYpWoi","refresh_expires_in":259200,"account_platform":"seller_center","expires_in":"259200","account":"xxx@gmail.com","user_info":[{"seller_id":"1001","user_id":10101},{"seller_id":"2001","user_id":20101}]}"#;
        let t = read_token(Purpose::TokenCreate, 200, body, &ctx(1000, None, None)).unwrap();
        assert_eq!(t.access_expires_at, Some(1000 + 259_200_000));
        assert_eq!(t.refresh_expires_at, Some(1000 + 259_200_000));
        assert_eq!(t.sellers, Some(vec!["1001".to_owned(), "2001".to_owned()]));
        assert!(t.refreshable);
        // Refresh: refresh expiry never moves later; missing refresh token kept.
        let r = read_token(
            Purpose::TokenRefresh,
            200,
            r#"{"access_token":"A2","expires_in":100,"refresh_expires_in":259200}"#,
            &ctx(5000, None, Some(&t)),
        )
        .unwrap();
        assert_eq!(r.refresh_expires_at, Some(1000 + 259_200_000));
        assert_eq!(r.refresh, t.refresh);
        assert_eq!(r.sellers, t.sellers);
        // refresh_expires_in = 0: no refresh ever.
        let z = read_token(
            Purpose::TokenCreate,
            200,
            r#"{"access_token":"A","refresh_token":"R","expires_in":10,"refresh_expires_in":0,"country_user_info":[{"country":"sg","seller_id":7}]}"#,
            &ctx(0, None, None),
        )
        .unwrap();
        assert!(!z.can_refresh(0));
        assert_eq!(z.sellers, Some(vec!["7".to_owned()]));
    }

    #[test]
    fn classifies_iop_codes_even_under_200() {
        let c = ctx(0, None, None);
        let err = |p, code: &str| {
            read_token(
                p,
                200,
                &format!(r#"{{"code":"{code}","type":"ISV","message":"m","request_id":"x"}}"#),
                &c,
            )
            .unwrap_err()
        };
        assert!(matches!(
            err(Purpose::TokenCreate, "InvalidCode"),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        assert!(matches!(
            err(Purpose::TokenRefresh, "IllegalRefreshToken"),
            Outcome::Rejected(Reason::RefreshRejected, _)
        ));
        assert!(matches!(
            err(Purpose::TokenRefresh, "AUTH_TYPE_UNSUPPORTED"),
            Outcome::Rejected(Reason::RefreshRejected, _)
        ));
        assert!(matches!(
            err(Purpose::TokenCreate, "ApiCallLimit"),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            err(Purpose::TokenCreate, "IncompleteSignature"),
            Outcome::HostBroken(_)
        ));
        assert!(matches!(
            read_token(Purpose::TokenCreate, 502, "", &c),
            Err(Outcome::Retry(_))
        ));
        assert!(matches!(
            read_token(Purpose::TokenCreate, 429, "{}", &c),
            Err(Outcome::Retry(_))
        ));
    }
}
