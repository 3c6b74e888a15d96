//! Compiles the C and C++ programs of the project with the system's `cc` and
//! `c++` against `include/shopauth.h` and the library built by this same
//! `cargo test` run, runs them, and checks they pass:
//!
//! - `examples/c_host.c` — the example host (KEY and oauth2 flows with a fake
//!   transport), linked once statically and once against the shared library;
//! - `tests/c/abi_test.c` — every exported function, NULL in every pointer
//!   position, bad input, statuses per spec §6;
//! - `tests/c/cpp_test.cpp` — the header-only C++ wrapper.
//!
//! The library is found next to this test executable: integration tests live
//! in `target/<profile>/deps/`, where `cargo test` builds the crate's
//! `staticlib` and `cdylib` before running them (only `cargo build` copies
//! them up to `target/<profile>/`, so a copy there may be stale and is used
//! only when `deps/` has none). A missing library fails the test; it is never
//! skipped. `CC` / `CXX` override the compilers.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

const NATIVE_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`: the parent of the `deps/` directory holding this test.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let deps = exe
        .parent()
        .expect("test executable has a parent directory");
    assert_eq!(
        deps.file_name().and_then(|n| n.to_str()),
        Some("deps"),
        "the test executable {} is not in target/<profile>/deps",
        exe.display()
    );
    deps.parent()
        .expect("target/<profile> directory")
        .to_path_buf()
}

/// `name` in `target/<profile>/deps/` (built by this run), else in `target/<profile>/`.
fn built(name: &str) -> PathBuf {
    let dir = profile_dir();
    let fresh = dir.join("deps").join(name);
    if fresh.is_file() {
        fresh
    } else {
        dir.join(name)
    }
}

fn static_lib() -> PathBuf {
    let lib = built("libshopauth.a");
    assert!(
        lib.is_file(),
        "the static library {} is missing: Cargo.toml must keep \"staticlib\" in [lib] crate-type",
        lib.display()
    );
    lib
}

fn shared_lib_dir() -> PathBuf {
    let lib = built(if cfg!(target_os = "macos") {
        "libshopauth.dylib"
    } else {
        "libshopauth.so"
    });
    let dir = lib.parent().expect("library directory").to_path_buf();
    assert!(
        lib.is_file(),
        "the shared library {} is missing: Cargo.toml must keep \"cdylib\" in [lib] crate-type",
        lib.display()
    );
    dir
}

fn header() -> PathBuf {
    let h = manifest_dir().join("include").join("shopauth.h");
    assert!(h.is_file(), "the header {} is missing", h.display());
    h
}

/// Where the compiled programs go (inside the target directory).
fn out_dir() -> PathBuf {
    let dir = profile_dir().join("c-programs");
    std::fs::create_dir_all(&dir).expect("create target/<profile>/c-programs");
    dir
}

fn compiler(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Runs a command, failing the test with its output unless it succeeds.
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .current_dir(manifest_dir())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\ncommand: {cmd:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Compiles one C or C++ source into `out_dir()/name`.
fn compile(cxx: bool, source: &str, name: &str, link: &[String]) -> PathBuf {
    header();
    let root = manifest_dir();
    let exe = out_dir().join(name);
    let mut cmd = if cxx {
        let mut c = Command::new(compiler("CXX", "c++"));
        c.args(["-std=c++17", "-pthread"]);
        c.arg(format!("-I{}", root.join("bindings").join("cpp").display()));
        c
    } else {
        let mut c = Command::new(compiler("CC", "cc"));
        c.args(["-std=c11", "-pthread"]);
        c
    };
    cmd.args(["-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(root.join(source))
        .args(link)
        .arg("-o")
        .arg(&exe);
    run(&mut cmd, &format!("compiling {source}"));
    exe
}

fn static_link() -> Vec<String> {
    let mut v = vec![static_lib().display().to_string()];
    v.extend(NATIVE_LIBS.iter().map(|s| s.to_string()));
    v
}

fn run_program(exe: &Path) -> String {
    let stdout = run(&mut Command::new(exe), &exe.display().to_string());
    println!("{stdout}");
    stdout
}

#[test]
fn c_host_example_static() {
    let exe = compile(false, "examples/c_host.c", "c_host_static", &static_link());
    let out = run_program(&exe);
    assert!(out.contains("both stores authorized"), "{out}");
}

#[test]
fn c_host_example_shared() {
    let dir = shared_lib_dir();
    let link = vec![
        format!("-L{}", dir.display()),
        "-lshopauth".to_string(),
        format!("-Wl,-rpath,{}", dir.display()),
    ];
    let exe = compile(false, "examples/c_host.c", "c_host_shared", &link);
    let out = run_program(&exe);
    assert!(out.contains("both stores authorized"), "{out}");
}

#[test]
fn c_abi_test() {
    let exe = compile(false, "tests/c/abi_test.c", "abi_test", &static_link());
    let out = run_program(&exe);
    assert!(out.contains(" 0 failed"), "{out}");
}

#[test]
fn cpp_wrapper_test() {
    let exe = compile(true, "tests/c/cpp_test.cpp", "cpp_test", &static_link());
    let out = run_program(&exe);
    assert!(out.contains(" 0 failed"), "{out}");
}
