//! Running the `feige` binary in the CLI's integration tests: each test file has `mod common;`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub const PASSWORD: &str = "correct horse";

/// What one run of `feige` printed.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON lines.
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// The one JSON object printed.
    pub fn one(&self) -> Value {
        let mut v = self.json();
        assert_eq!(v.len(), 1, "{}", self.stdout);
        v.remove(0)
    }

    /// The JSON error printed on stderr.
    pub fn error_code(&self) -> String {
        assert!(!self.ok, "expected a failure, got {}", self.stdout);
        let v: Value = serde_json::from_str(self.stderr.trim()).unwrap();
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// Runs `feige` with `args` against `server`, keeping sessions in `state`.
pub async fn feige(server: &str, state: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_feige"));
    cmd.args(args)
        .env("FEIGE_SERVER", server)
        .env("FEIGE_STATE_DIR", state)
        .env_remove("HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    match stdin {
        Some(_) => cmd.env_remove("FEIGE_PASSWORD"),
        None => cmd.env("FEIGE_PASSWORD", PASSWORD),
    };
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("feige did not finish within 30 s")
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `feige` with `args` against `server`, sessions in `state`, the password in the
/// environment, stdin closed: for a command that runs on (`listen`) while the test acts.
pub fn command(server: &str, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_feige"));
    cmd.args(args)
        .env("FEIGE_SERVER", server)
        .env("FEIGE_STATE_DIR", state)
        .env("FEIGE_PASSWORD", PASSWORD)
        .env_remove("HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    cmd
}

/// Runs `feige --json [--user USER] ARGS...` (no `--user` for `None` or ""): its JSON lines,
/// or the error code it printed.
pub async fn feige_json(
    server: &str,
    state: &Path,
    user: Option<&str>,
    args: &[&str],
) -> Result<Vec<Value>, String> {
    let mut all = vec!["--json"];
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        all.extend(["--user", u]);
    }
    all.extend_from_slice(args);
    let run = feige(server, state, &all, None).await;
    if run.ok {
        Ok(run.json())
    } else {
        eprintln!("feige {args:?}: {}", run.stderr.trim());
        Err(run.error_code())
    }
}
