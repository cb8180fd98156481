//! What the tests that build C programs share: paths into the repository and the build,
//! running a command with its output shown.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path under `client-sdk/`.
pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The `target/<profile>` directory this test was built in.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-<hash>
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// The directory holding `libfeige.a` and `libfeige.so` of this build. Cargo writes them to
/// `deps/` in the same rustc run as the rlib this test links (`cargo build` also copies them
/// up to `target/<profile>/`, where they may be older).
pub fn lib_dir() -> PathBuf {
    let dir = profile_dir();
    [dir.join("deps"), dir]
        .into_iter()
        .find(|d| d.join("libfeige.a").exists() && d.join("libfeige.so").exists())
        .expect("libfeige.a and libfeige.so not found next to the test binary")
}

/// `libfeige.a` of this build.
pub fn static_lib() -> PathBuf {
    lib_dir().join("libfeige.a")
}

/// Runs `cmd`, echoing its output into the test's.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A fresh directory for one test's files.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fails the test when `tool` is missing (`.ci/run` installs it).
pub fn require(tool: &str) {
    assert!(
        have(tool),
        "`{tool}` is not installed: this test needs it (.ci/run installs it from Debian)"
    );
}

/// Installs the SDK of this build under `prefix` with `client-sdk/ffi/install.sh`.
pub fn install(prefix: &Path) {
    let out = run(Command::new("bash")
        .arg(repo_file("ffi/install.sh"))
        .arg("--from")
        .arg(lib_dir())
        .arg("--prefix")
        .arg(prefix));
    assert!(out.status.success(), "install.sh failed");
}

/// `exe` under valgrind memcheck (leaks and invalid accesses fail it with exit status 1),
/// or bare when valgrind is not installed (said loudly; `.ci/run` installs it).
pub fn memcheck(exe: &Path) -> Command {
    if !have("valgrind") {
        eprintln!("\n!!!!!!!! valgrind is not installed: running WITHOUT memory checks !!!!!!!!\n");
        return Command::new(exe);
    }
    let mut c = Command::new("valgrind");
    c.args([
        "--error-exitcode=1",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,possible",
        "--show-leak-kinds=definite,possible",
        "--num-callers=40",
    ])
    .arg(exe);
    c
}
