//! Unit tests of `invariants` (see there why they live in this file).

use super::*;

/// The checks as they read before their ASCII fast path.
fn id_ok_chars(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.chars().count() <= max
        && !s.chars().any(is_control)
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
}

fn text_ok_chars(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(is_control)
}

#[test]
fn the_ascii_fast_path_changes_no_verdict() {
    let mut cases: Vec<String> = [
        "",
        "a",
        " a",
        "a ",
        " ",
        "a b",
        "\u{85}a",
        "a\u{a0}",
        "é",
        "\u{3000}x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for b in 0u8..=0x7f {
        let c = char::from(b);
        cases.extend([
            format!("{c}"),
            format!("x{c}"),
            format!("{c}x"),
            format!("x{c}x"),
        ]);
    }
    for c in ['\u{80}', '\u{9f}', '\u{a0}', '\u{2028}', 'ü'] {
        cases.extend([format!("x{c}"), format!("{c}x"), format!("x{c}x")]);
    }
    cases.extend([
        "x".repeat(63),
        "x".repeat(64),
        "x".repeat(65),
        "é".repeat(64),
        "é".repeat(65),
    ]);
    for s in &cases {
        for max in [1, 2, 3, 64] {
            assert_eq!(id_ok(s, max), id_ok_chars(s, max), "id_ok({s:?}, {max})");
            assert_eq!(
                text_ok(s, max),
                text_ok_chars(s, max),
                "text_ok({s:?}, {max})"
            );
        }
    }
}
