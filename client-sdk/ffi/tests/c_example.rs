//! Drives the C example `client-sdk/examples/chat.c` against a real server: compiled with
//! `cc -std=c99 -Wall -Wextra -Werror -pedantic` and linked to `libfeige.a`, run under valgrind
//! (no leaks, no invalid access). The header is also compiled as C++.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use feige_tests::TestServer;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The `target/<profile>` directory this test was built in.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/c_example-<hash>
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// `libfeige.a` of this build. Cargo writes it to `deps/` in the same rustc run as the rlib
/// this test links (`cargo build` also copies it up to `target/<profile>/`, where it may be
/// older).
fn static_lib() -> PathBuf {
    let dir = profile_dir();
    [dir.join("deps/libfeige.a"), dir.join("libfeige.a")]
        .into_iter()
        .find(|p| p.exists())
        .expect("libfeige.a not found next to the test binary")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("feige-c-example");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles chat.c as strict C99 and links it statically with libfeige.
fn build_chat() -> PathBuf {
    let exe = work_dir().join("chat");
    let out = run(Command::new("cc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-I",
        ])
        .arg(repo_file("include"))
        .arg(repo_file("examples/chat.c"))
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe));
    assert!(out.status.success(), "chat.c did not compile");
    exe
}

#[test]
fn header_compiles_as_cxx() {
    let out = run(Command::new("c++")
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-I",
        ])
        .arg(repo_file("include"))
        .arg(repo_file("examples/header_check.cpp")));
    assert!(out.status.success(), "feige.h does not compile as C++");
}

fn valgrind() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v valgrind"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?;
    let path = path.trim();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_example_against_a_real_server() {
    let server = TestServer::start().await;
    // Accepts connections (the kernel does) and never answers: a Hello there waits.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let exe = build_chat();
    let addr = server.addr();
    let suffix = std::process::id().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = match valgrind() {
            Some(vg) => {
                let mut c = Command::new(vg);
                c.args([
                    "--error-exitcode=1",
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite,possible",
                    "--show-leak-kinds=definite,possible",
                    "--track-origins=yes",
                    "--num-callers=40",
                ])
                .arg(&exe);
                c
            }
            None => {
                eprintln!(
                    "\n!!!!!!!! valgrind is not installed: running chat WITHOUT memory checks \
                     (.ci/run installs it) !!!!!!!!\n"
                );
                Command::new(&exe)
            }
        };
        run(cmd.args([&addr, &suffix, &silent_addr]))
    })
    .await
    .unwrap();
    drop(silent);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PASS: 0 failure(s)"),
        "chat.c reported failures"
    );
    assert!(!stdout.contains("FAIL"), "chat.c reported failures");
    assert!(out.status.success(), "chat exited with {}", out.status);
}
