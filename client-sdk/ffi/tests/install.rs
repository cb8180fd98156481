//! The installed SDK (`client-sdk/ffi/install.sh`): the layout under the prefix, the SONAME,
//! a static library that exports only `feige_*`, and C programs built against the install —
//! with `pkg-config` (and still running once the prefix has moved, found through
//! `LD_LIBRARY_PATH` by its SONAME) and with CMake's `find_package(Feige)` — talking to a real
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{install, repo_file, require, run};
use feige_tests::TestServer;
use tempfile::TempDir;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A scratch directory under the target directory, removed when dropped (an install and the
/// programs linked statically against it take a few hundred MB in a debug build).
fn scratch() -> TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn readelf(args: &[&str], file: &Path) -> String {
    require("readelf");
    // Not through `run`: a symbol table would flood the test's output.
    let out = Command::new("readelf")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "readelf {args:?} {} failed",
        file.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the C example `exe` against a fresh server, with `env` set; panics unless it passes.
async fn run_chat(exe: &Path, env: &[(&str, &Path)], suffix: &str) {
    let server = TestServer::start().await;
    let mut cmd = Command::new(exe);
    cmd.args([server.addr(), format!("{suffix}{}", std::process::id())]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PASS: 0 failure(s)"),
        "{} failed",
        exe.display()
    );
    assert!(
        out.status.success(),
        "{} exited with {}",
        exe.display(),
        out.status
    );
}

/// One install, read by the checks below in turn (each a few hundred MB otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_layout_symbols_and_cmake_package() {
    let dir = scratch();
    let prefix = dir.path().join("prefix");
    install(&prefix);
    layout_and_soname(&prefix);
    static_library_exports_only_feige_symbols(&prefix);
    cmake_consumer_finds_the_package(&prefix, &dir.path().join("cmake")).await;
    cmake_version_file_refuses_a_newer_version(&prefix, &dir.path().join("cmake-version"));
}

fn layout_and_soname(prefix: &Path) {
    let lib = prefix.join("lib");
    let real = format!("libfeige.so.{VERSION}");
    let major = VERSION.split('.').next().unwrap();
    let soname = format!("libfeige.so.{major}");
    assert!(lib.join(&real).is_file(), "{real} missing");
    assert_eq!(
        std::fs::read_link(lib.join(&soname)).unwrap(),
        Path::new(&real)
    );
    assert_eq!(
        std::fs::read_link(lib.join("libfeige.so")).unwrap(),
        Path::new(&soname)
    );
    let dynamic = readelf(&["-d"], &lib.join(&real));
    assert!(
        dynamic.contains(&format!("Library soname: [{soname}]")),
        "no SONAME {soname} in {real}"
    );
    for f in [
        "include/feige.h",
        "lib/libfeige.a",
        "lib/pkgconfig/feige.pc",
        "lib/cmake/Feige/FeigeConfig.cmake",
        "lib/cmake/Feige/FeigeConfigVersion.cmake",
    ] {
        assert!(prefix.join(f).is_file(), "{f} missing");
    }
    let header = std::fs::read(prefix.join("include/feige.h")).unwrap();
    assert_eq!(header, std::fs::read(repo_file("include/feige.h")).unwrap());
}

/// The symbols the static library defines globally: exactly the header's functions.
fn static_library_exports_only_feige_symbols(prefix: &Path) {
    let symbols = readelf(&["-sW"], &prefix.join("lib/libfeige.a"));
    let mut exported: Vec<&str> = symbols
        .lines()
        .filter_map(|l| {
            // Num: Value Size Type Bind Vis Ndx Name
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && matches!(f[4], "GLOBAL" | "WEAK") && f[6] != "UND").then(|| f[7])
        })
        .collect();
    exported.sort_unstable();
    let header = std::fs::read_to_string(repo_file("include/feige.h")).unwrap();
    let mut declared: Vec<&str> = header
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("feige_") && w.len() > "feige_".len())
        .collect();
    declared.sort_unstable();
    declared.dedup();
    assert!(exported.contains(&"feige_call"), "feige_call not exported");
    assert_eq!(
        exported, declared,
        "libfeige.a exports other symbols than feige.h declares"
    );
}

/// `pkg-config --cflags --libs feige` from the prefix builds chat.c against libfeige.so; the
/// program records the SONAME and no path, so it runs after the prefix has moved, found
/// through `LD_LIBRARY_PATH`, and does not start without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkg_config_program_runs_after_the_prefix_moves() {
    require("pkg-config");
    let scratch = scratch();
    let dir = scratch.path();
    let prefix = dir.join("prefix");
    install(&prefix);
    let out = run(Command::new("pkg-config")
        .args(["--cflags", "--libs", "feige"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
    assert!(
        out.status.success(),
        "pkg-config --cflags --libs feige failed"
    );
    let flags = String::from_utf8(out.stdout).unwrap();
    assert!(flags.contains("-lfeige"), "pkg-config gave {flags}");
    let exe = dir.join("chat");
    let out = run(Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(repo_file("examples/chat.c"))
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(&exe));
    assert!(
        out.status.success(),
        "chat.c did not build with pkg-config's flags"
    );
    let dynamic = readelf(&["-d"], &exe);
    assert!(
        dynamic.contains("Shared library: [libfeige.so.0]"),
        "chat does not need libfeige.so.0"
    );
    assert!(
        !dynamic.contains("RPATH") && !dynamic.contains("RUNPATH"),
        "chat records a library path"
    );

    let moved = dir.join("moved");
    std::fs::rename(&prefix, &moved).unwrap();
    let bare = run(Command::new(&exe).env_remove("LD_LIBRARY_PATH"));
    assert_eq!(
        bare.status.code(),
        Some(127),
        "chat started without libfeige.so.0 on the path"
    );
    run_chat(&exe, &[("LD_LIBRARY_PATH", &moved.join("lib"))], "pc").await;
}

/// A CMake project with `find_package(Feige 0.1 REQUIRED)` links `Feige::feige` and
/// `Feige::feige_static`; both programs pass against a real server.
async fn cmake_consumer_finds_the_package(prefix: &Path, build: &Path) {
    require("cmake");
    let out = run(Command::new("cmake")
        .arg("-S")
        .arg(repo_file("examples/cmake-consumer"))
        .arg("-B")
        .arg(build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
    assert!(
        out.status.success(),
        "cmake could not configure the consumer"
    );
    let out = run(Command::new("cmake").arg("--build").arg(build));
    assert!(out.status.success(), "the CMake consumer did not build");
    run_chat(&build.join("chat"), &[], "cm").await;
    run_chat(&build.join("chat_static"), &[], "cs").await;
}

/// Asking for a newer or another major version than the installed one fails.
fn cmake_version_file_refuses_a_newer_version(prefix: &Path, dir: &Path) {
    require("cmake");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\nproject(v LANGUAGES NONE)\n\
         find_package(Feige 99.0 REQUIRED)\n",
    )
    .unwrap();
    let out = run(Command::new("cmake")
        .arg("-S")
        .arg(dir)
        .arg("-B")
        .arg(dir.join("build"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
    assert!(!out.status.success(), "find_package(Feige 99.0) succeeded");
    assert!(String::from_utf8_lossy(&out.stderr).contains(VERSION));
}
