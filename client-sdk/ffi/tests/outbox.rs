//! The persistent outbox across application restarts, driven through the C example
//! `client-sdk/examples/outbox.c` (C99, linked to `libfeige.a`): sends queued while the server
//! is down, by two runs of the program (each a fresh client on the same outbox file, the
//! second ending in `_exit` as in a crash), arrive
//! once each, in the order queued, when a third run resumes the session after the server is
//! back on the same address; a message cancelled with `cancel_send` never arrives. The runs
//! but the crashing one are under valgrind memcheck.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{memcheck, repo_file, run, static_lib};
use feige_client::pb;
use feige_tests::sdk::{login, register};
use feige_tests::TestServer;

fn build(dir: &Path) -> PathBuf {
    let exe = dir.join("outbox");
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
        .arg(repo_file("examples/outbox.c"))
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe));
    assert!(out.status.success(), "outbox.c did not compile");
    exe
}

/// Runs one phase of the program (an application run) on a blocking thread, under valgrind
/// memcheck unless it ends in a simulated crash.
async fn phase(exe: &Path, args: Vec<String>) -> Output {
    let mut cmd = if args.last().is_some_and(|a| a == "crash") {
        Command::new(exe)
    } else {
        memcheck(exe)
    };
    cmd.args(&args);
    let out = tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("PASS: 0 failure(s)"),
        "outbox {args:?} failed"
    );
    out
}

fn lines_with(out: &Output, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_sends_survive_app_restarts_and_arrive_once_in_order() {
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = scratch.path();
    let exe = build(dir);
    let file = dir.join("outbox.jsonl").display().to_string();
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let alice = register(&addr, "alice").await;
    let bob = register(&addr, "bob").await.to_string();
    let out = phase(
        &exe,
        vec!["login".into(), addr.clone(), file.clone(), "alice".into()],
    )
    .await;
    let token = lines_with(&out, "TOKEN ").pop().expect("a token");

    // The server goes down; the application queues and quits, starts again, queues more
    // and crashes (`_exit` with the client never freed).
    let data = s.stop().await;
    let mut queued = Vec::new();
    for (prefix, end) in [("a", "quit"), ("b", "crash")] {
        let args = vec![
            "queue".into(),
            addr.clone(),
            file.clone(),
            bob.clone(),
            prefix.into(),
            "15".into(),
            end.into(),
        ];
        queued.extend(lines_with(&phase(&exe, args).await, "QUEUED "));
    }
    assert_eq!(queued.len(), 30);

    // The server comes back on the same address; a third run resumes and drains the outbox.
    let listen = addr.parse().unwrap();
    let s = TestServer::start_in(data, |c| {
        c.listen = listen;
        c.dm_policy = feige_tests::DmPolicy::Anyone;
    })
    .await;
    let args = vec![
        "deliver".into(),
        addr.clone(),
        file.clone(),
        token,
        "30".into(),
    ];
    let sent = lines_with(&phase(&exe, args).await, "SENT ");
    assert_eq!(sent, queued, "sent in the order queued, each once");
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        0,
        "the outbox file is empty once everything was sent"
    );

    // Bob reads them once each, in order; the cancelled ones never came.
    let (bob_client, _) = login(&addr, "bob", "phone").await;
    let history = bob_client
        .history(pb::History {
            peer_user: alice,
            limit: 100,
            after_seq: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    let texts: Vec<String> = history.iter().rev().map(|m| m.text.clone()).collect();
    let expected: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|p| (0..15).map(move |i| format!("{p}{i}")))
        .collect();
    assert_eq!(texts, expected);
    bob_client.close().await;
    s.handle.shutdown().await;
}
