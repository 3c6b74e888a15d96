//! Taobao through a status-check service: seed 001 (`damaijia`,
//! `POST …/vv/external/getShopAuthorize`, JSON) and seed 002 (`vvtool`,
//! `POST …/tool/erps/shop-authorize`, form). Request builders, answer
//! parsers, metering, and the classification of every code the seeds list:
//!
//! | class | damaijia | vvtool |
//! |---|---|---|
//! | not authorized yet (keep polling) | `unAuthorize`, 2011 | `unAuthorize`, 302, 303 |
//! | retry later (backoff) | 2010, 5xx, 429 | 101, 202, 5xx, 429 |
//! | host's account/setup broken | 132, 200, other | 200, 203, 204, 401, 404, other |
//! | bad parameter for this store | 422 | 100, 103 |
//!
//! What does not live here: polling intervals, the rate limit, re-checks.
//!
//! Also here: its settings (`CheckerApp`) and the reading of `apps.taobao`, and its `Platform` implementation.

use super::{Ctx, Outcome, Outgoing, describe, json_i64, json_text, retryable_status};
use crate::config::{AppEntry, Profile, app_entry, rate, required_secret, url_field, url_or};
use crate::encoding::{form, pct};
use crate::error::ConfigError;
use crate::message::Purpose;
use crate::platform::Kind;
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::Value;

/// Path of seed 001's service.
pub const DAMAIJIA_PATH: &str = "/vv/external/getShopAuthorize";
/// Path of seed 002's service.
pub const VVTOOL_PATH: &str = "/tool/erps/shop-authorize";

/// The seller's authorization page (`{seller_id}` filled in, encoded).
pub fn auth_page(app: &CheckerApp, shop_id: &str) -> String {
    app.auth_page_url.replace("{seller_id}", &pct(shop_id))
}

/// The status-check request for the store's shop id.
pub fn build(app: &CheckerApp, ctx: &Ctx<'_>) -> Outgoing {
    let shop = ctx.seller_id.unwrap_or("");
    let edition = app.edition.to_string();
    match app.service {
        CheckerService::Damaijia => Outgoing {
            method: "POST",
            url: format!("{}{DAMAIJIA_PATH}", app.base_url),
            headers: vec![
                (
                    "Authorization".to_owned(),
                    app.access_token.expose().to_owned(),
                ),
                ("Content-Type".to_owned(), "application/json".to_owned()),
            ],
            body: Some(serde_json::json!({"shopId": shop, "edition": edition}).to_string()),
        },
        CheckerService::Vvtool => Outgoing {
            method: "POST",
            url: format!("{}{VVTOOL_PATH}", app.base_url),
            headers: vec![
                (
                    "Authorization".to_owned(),
                    format!("Bearer {}", app.access_token.expose()),
                ),
                (
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ),
            ],
            body: Some(form([("shop_id", shop), ("vvtype", edition.as_str())])),
        },
    }
}

/// Reads an answer.
pub fn read(service: CheckerService, status: u16, body: &str) -> Outcome {
    if retryable_status(status) {
        return Outcome::Retry(describe(status, "status service unavailable"));
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return if (200..300).contains(&status) {
            Outcome::Retry(describe(status, "status service answered no JSON"))
        } else {
            Outcome::HostBroken(describe(status, "status service refused the request"))
        };
    };
    let code_field = match service {
        CheckerService::Damaijia => "status",
        CheckerService::Vvtool => "code",
    };
    let code = json_i64(v.get(code_field));
    let msg_field = v
        .get("msg")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("err"));
    let msg = describe(
        status,
        &format!(
            "status service code {}: {}",
            code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
            msg_field.and_then(Value::as_str).unwrap_or("")
        ),
    );
    match (service, code) {
        (_, Some(0)) => {
            // Success: data.status (or top-level status for vv-tool's table form).
            let data = v.get("data").filter(|d| d.is_object());
            let pick = |k: &str| {
                data.and_then(|d| d.get(k))
                    .or_else(|| v.get(k).filter(|_| k != code_field))
            };
            let money_key = match service {
                CheckerService::Damaijia => "deduct_money",
                CheckerService::Vvtool => "withholding_money",
            };
            let cost = json_i64(pick(money_key));
            let st = data
                .and_then(|d| d.get("status"))
                .or_else(|| {
                    if service == CheckerService::Vvtool {
                        v.get("status")
                    } else {
                        None
                    }
                })
                .and_then(Value::as_str);
            match st {
                Some("subAuthorize") => Outcome::Authorized { cost },
                Some("unAuthorize") => Outcome::NotYet { cost, link: None },
                _ => Outcome::HostBroken(describe(
                    status,
                    "status service answered an unknown status",
                )),
            }
        }
        (CheckerService::Damaijia, Some(2011)) => Outcome::NotYet {
            cost: None,
            link: None,
        },
        (CheckerService::Damaijia, Some(2010)) => Outcome::Retry(msg),
        (CheckerService::Damaijia, Some(422)) => Outcome::BadParam(msg),
        (CheckerService::Damaijia, _) => Outcome::HostBroken(msg), // 132, 200, unknown
        (CheckerService::Vvtool, Some(302)) => Outcome::NotYet {
            cost: None,
            link: find_link(&v),
        },
        (CheckerService::Vvtool, Some(303)) => Outcome::NotYet {
            cost: None,
            link: None,
        },
        (CheckerService::Vvtool, Some(101 | 202)) => Outcome::Retry(msg),
        (CheckerService::Vvtool, Some(100 | 103)) => Outcome::BadParam(msg),
        (CheckerService::Vvtool, _) => Outcome::HostBroken(msg), // 200, 203, 204, 401, 404, unknown
    }
}

/// The first http(s) link in a 302 answer: a link-like field of `data` or
/// the top level, else the first URL inside the message text.
fn find_link(v: &Value) -> Option<String> {
    const KEYS: [&str; 6] = ["url", "link", "auth_url", "authUrl", "qrcode", "qr_url"];
    let is_link = |s: &str| s.starts_with("http://") || s.starts_with("https://");
    for scope in [v.get("data"), Some(v)].into_iter().flatten() {
        if let Some(s) = scope.as_str().filter(|s| is_link(s)) {
            return Some(s.to_owned());
        }
        for k in KEYS {
            if let Some(s) = json_text(scope.get(k)).filter(|s| is_link(s)) {
                return Some(s);
            }
        }
    }
    let text = v.get("msg").and_then(Value::as_str)?;
    let start = text.find("https://").or_else(|| text.find("http://"))?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '，' | '。'))
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

impl super::Platform for CheckerApp {
    fn flow(&self) -> super::Flow {
        super::Flow::Poll
    }
    fn authorize_url(&self, a: &super::UrlArgs<'_>) -> String {
        auth_page(self, a.seller_id.unwrap_or(""))
    }
    fn build(&self, _purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, ctx)
    }
    fn read(&self, _purpose: Purpose, status: u16, body: &str, _ctx: &Ctx<'_>) -> Outcome {
        read(self.service, status, body)
    }
    fn recheck_interval_s(&self) -> Option<u64> {
        Some(self.recheck_interval_s)
    }
    fn secrets(&self) -> Vec<&str> {
        vec![self.access_token.expose()]
    }
}

/// Which status-check service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckerService {
    /// Seed 001.
    Damaijia,
    /// Seed 002.
    Vvtool,
}

/// Status-check settings.
#[derive(Debug, Clone)]
pub struct CheckerApp {
    /// Which service.
    pub service: CheckerService,
    /// The host's token there.
    pub access_token: Secret,
    /// The seller's authorization page (template).
    pub auth_page_url: String,
    /// Edition / vvtype.
    pub edition: u32,
    /// Service origin.
    pub base_url: String,
    /// Re-check interval in seconds.
    pub recheck_interval_s: u64,
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of `apps.taobao` (the status-check service): only these fields apply.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    checker: Option<String>,
    #[serde(default)]
    access_token: Option<Secret>,
    #[serde(default)]
    auth_page_url: Option<String>,
    #[serde(default)]
    edition: Option<u32>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
    #[serde(default)]
    recheck_interval_s: Option<u64>,
}

/// Reads `apps.taobao` (the status-check service).
pub(crate) fn profile(name: &str, app: &AppEntry) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let app: Entry = app_entry(app, name)?;
    let (service, base, default_rate) = match app.checker.as_deref() {
        Some("damaijia") => (CheckerService::Damaijia, "http://www.damaijia168.com", None),
        Some("vvtool") => (CheckerService::Vvtool, "http://api.vv-tool.com", Some(10)),
        Some(_) => {
            return Err(ConfigError::new(
                at("checker"),
                "must be \"damaijia\" or \"vvtool\"",
            ));
        }
        None => {
            return Err(ConfigError::new(
                at("checker"),
                "is required (\"damaijia\" or \"vvtool\")",
            ));
        }
    };
    let page = app
        .auth_page_url
        .as_deref()
        .ok_or_else(|| ConfigError::new(at("auth_page_url"), "is required"))?;
    url_field(
        Some(&page.replace("{seller_id}", "x")),
        &at("auth_page_url"),
    )?;
    let recheck = app.recheck_interval_s.unwrap_or(86400);
    if recheck == 0 {
        return Err(ConfigError::new(
            at("recheck_interval_s"),
            "must be at least 1",
        ));
    }
    Ok(Profile::new(
        name,
        Kind::new(CheckerApp {
            service,
            access_token: required_secret(&app.access_token, &at("access_token"))?,
            auth_page_url: page.to_owned(),
            edition: app.edition.unwrap_or(1),
            base_url: url_or(app.base_url.as_deref(), base, &at("base_url"))?
                .trim_end_matches('/')
                .to_owned(),
            recheck_interval_s: recheck,
        }),
        rate(
            app.rate_limit_per_s.or(default_rate),
            &at("rate_limit_per_s"),
        )?,
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn app(service: CheckerService) -> CheckerApp {
        CheckerApp {
            service,
            access_token: Secret::new("1798c6aadec33d1bc2f5b707f1049aefexxxx"),
            auth_page_url: "https://auth.example/page?shop={seller_id}".into(),
            edition: 1,
            base_url: match service {
                CheckerService::Damaijia => "http://www.damaijia168.com".into(),
                CheckerService::Vvtool => "http://api.vv-tool.com".into(),
            },
            recheck_interval_s: 86400,
        }
    }

    fn ctx(shop: &str) -> Ctx<'_> {
        Ctx {
            now: 0,
            seller_id: Some(shop),
            code: None,
            pkce_verifier: None,
            tokens: None,
            key: None,
            learned: &[],
        }
    }

    #[test]
    fn seed_001_request() {
        let r = build(&app(CheckerService::Damaijia), &ctx("256465161"));
        assert_eq!(
            r.url,
            "http://www.damaijia168.com/vv/external/getShopAuthorize"
        );
        assert_eq!(
            r.headers[0],
            (
                "Authorization".to_owned(),
                "1798c6aadec33d1bc2f5b707f1049aefexxxx".to_owned()
            )
        );
        assert_eq!(
            r.body.as_deref(),
            Some(r#"{"edition":"1","shopId":"256465161"}"#)
        );
    }

    #[test]
    fn seed_002_request() {
        let r = build(&app(CheckerService::Vvtool), &ctx("256465161"));
        assert_eq!(r.url, "http://api.vv-tool.com/tool/erps/shop-authorize");
        assert_eq!(
            r.headers[0].1,
            "Bearer 1798c6aadec33d1bc2f5b707f1049aefexxxx"
        );
        assert_eq!(r.body.as_deref(), Some("shop_id=256465161&vvtype=1"));
        assert_eq!(
            auth_page(&app(CheckerService::Vvtool), "a b"),
            "https://auth.example/page?shop=a%20b"
        );
    }

    #[test]
    fn seed_001_answers() {
        use Outcome::*;
        let d = CheckerService::Damaijia;
        assert_eq!(
            read(
                d,
                200,
                r#"{"data":{"status":"subAuthorize","deduct_money":4},"status":0}"#
            ),
            Authorized { cost: Some(4) }
        );
        assert_eq!(
            read(
                d,
                200,
                r#"{"data":{"status":"unAuthorize","deduct_money":"2"},"status":0}"#
            ),
            NotYet {
                cost: Some(2),
                link: None
            }
        );
        assert_eq!(
            read(d, 200, r#"{"status":2011,"msg":"店铺未授权"}"#),
            NotYet {
                cost: None,
                link: None
            }
        );
        assert!(matches!(read(d, 200, r#"{"status":2010}"#), Retry(_)));
        assert!(matches!(
            read(d, 200, r#"{"status":422,"err":"trade_id"}"#),
            BadParam(_)
        ));
        assert!(matches!(read(d, 200, r#"{"status":132}"#), HostBroken(_)));
        assert!(matches!(read(d, 200, r#"{"status":200}"#), HostBroken(_)));
        assert!(matches!(read(d, 502, ""), Retry(_)));
    }

    #[test]
    fn seed_002_answers() {
        use Outcome::*;
        let v = CheckerService::Vvtool;
        assert_eq!(
            read(
                v,
                200,
                r#"{ "code": 0, "msg": "success", "msec": 1165, "time": 1617257597, "data": { "status":"subAuthorize", "withholding_money": 0 }}"#
            ),
            Authorized { cost: Some(0) }
        );
        assert_eq!(
            read(
                v,
                200,
                r#"{"code":0,"status":"unAuthorize","withholding_money":3}"#
            ),
            NotYet {
                cost: Some(3),
                link: None
            }
        );
        assert_eq!(
            read(
                v,
                200,
                r#"{"code":302,"msg":"Not authorized yet","data":{"url":"https://oauth.taobao.com/x?y=1"}}"#
            ),
            NotYet {
                cost: None,
                link: Some("https://oauth.taobao.com/x?y=1".into())
            }
        );
        assert_eq!(
            read(
                v,
                200,
                r#"{"code":302,"msg":"请扫码授权 https://qr.example/a?b=c 后重试"}"#
            ),
            NotYet {
                cost: None,
                link: Some("https://qr.example/a?b=c".into())
            }
        );
        assert_eq!(
            read(v, 200, r#"{"code":303}"#),
            NotYet {
                cost: None,
                link: None
            }
        );
        for c in [101, 202] {
            assert!(
                matches!(read(v, 200, &format!(r#"{{"code":{c}}}"#)), Retry(_)),
                "{c}"
            );
        }
        for c in [100, 103] {
            assert!(
                matches!(read(v, 200, &format!(r#"{{"code":{c}}}"#)), BadParam(_)),
                "{c}"
            );
        }
        for c in [200, 203, 204, 401, 404, 999] {
            assert!(
                matches!(read(v, 200, &format!(r#"{{"code":{c}}}"#)), HostBroken(_)),
                "{c}"
            );
        }
        assert!(matches!(read(v, 429, ""), Retry(_)));
        assert!(matches!(read(v, 401, "unauthorized"), HostBroken(_)));
    }
}
