//! Percent-encoding with the RFC 3986 unreserved set and upper-case hex
//! (spec §3), form bodies and query strings built from it, and the parsing
//! of a redirect's raw query string.
//!
//! What does not live here: signing (each platform signs the raw values).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::BTreeMap;

/// Everything but ALPHA / DIGIT / `-` / `.` / `_` / `~` is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one component.
pub fn pct(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Percent-encodes `s` onto `out`.
fn pct_into(out: &mut String, s: &str) {
    for chunk in utf8_percent_encode(s, UNRESERVED) {
        out.push_str(chunk);
    }
}

fn form_into<'a, I>(out: &mut String, pairs: I)
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let start = out.len();
    for (k, v) in pairs {
        if out.len() > start {
            out.push('&');
        }
        pct_into(out, k);
        out.push('=');
        pct_into(out, v);
    }
}

/// `k=v&k=v` with both sides percent-encoded, in the given order. Used for
/// query strings and `application/x-www-form-urlencoded` bodies alike.
pub fn form<'a, I>(pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut out = String::with_capacity(256);
    form_into(&mut out, pairs);
    out
}

/// Appends `pairs` to a URL that may already have a query (and keeps a
/// fragment-free URL's existing query).
pub fn append_query<'a, I>(base: &str, pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    let mut out = String::with_capacity(base.len() + 256);
    out.push_str(base);
    out.push_str(sep);
    form_into(&mut out, pairs);
    out
}

/// Parses a raw query string (`+` is a space, `%XX` decoded, a leading `?`
/// ignored). Of a repeated name the first value counts.
pub fn parse_query(q: &str) -> BTreeMap<String, String> {
    let q = q.strip_prefix('?').unwrap_or(q);
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_set_and_upper_hex() {
        assert_eq!(pct("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(pct("a b+c/d?&="), "a%20b%2Bc%2Fd%3F%26%3D");
        assert_eq!(pct("店"), "%E5%BA%97");
        assert_eq!(pct("*"), "%2A");
    }

    #[test]
    fn append_keeps_existing_query() {
        assert_eq!(append_query("https://x/a", [("k", "v")]), "https://x/a?k=v");
        assert_eq!(
            append_query("https://x/a?z=1", [("k", "v w")]),
            "https://x/a?z=1&k=v%20w"
        );
        assert_eq!(append_query("https://x/a?", [("k", "")]), "https://x/a?k=");
    }

    #[test]
    fn parse_query_decodes() {
        let m = parse_query("?code=a%2Bb&state=1_x&x=a+b&code=second");
        assert_eq!(m["code"], "a+b");
        assert_eq!(m["x"], "a b");
        assert_eq!(m["state"], "1_x");
    }
}
