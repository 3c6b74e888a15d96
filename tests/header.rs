//! The committed header `include/shopauth.h` must be what cbindgen generates
//! from the crate now. `SHOPAUTH_BLESS=1 cargo test --test header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml reads");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let path = root.join("include/shopauth.h");
    if std::env::var_os("SHOPAUTH_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("header writes");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/shopauth.h is stale: run `SHOPAUTH_BLESS=1 cargo test --test header` and commit it"
    );
    for name in [
        "shopauth_version",
        "shopauth_engine_new",
        "shopauth_engine_free",
        "shopauth_engine_handle",
        "shopauth_engine_handle_drain",
        "shopauth_engine_handle_timeout",
        "shopauth_engine_poll_output",
        "shopauth_engine_poll_outputs",
        "shopauth_engine_poll_timeout",
        "shopauth_engine_snapshot",
        "shopauth_engine_restore",
        "shopauth_engine_take_changes",
        "shopauth_engine_load",
        "shopauth_engine_unload",
        "shopauth_engine_route",
        "shopauth_string_free",
        "SHOPAUTH_POISONED = 5",
        "typedef struct shopauth_engine shopauth_engine;",
    ] {
        assert!(generated.contains(name), "header lacks {name}");
    }
}
