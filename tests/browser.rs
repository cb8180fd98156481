//! The pages in a real browser: headless Chromium from Debian (`/usr/bin/chromium`, or
//! `FEIGE_CHROMIUM`) driven by playwright-core (`npm ci --prefix tests/browser`). Two browser
//! users chat in room 101 and 1:1 with a Rust-SDK user at the same time; the admin page kicks
//! one of them, whose page shows it and then logs in again with its token and syncs. The
//! script and this test move in step: it prints `STEP <name> <json>`, this test answers
//! `GO <name>`. Screenshots go to `target/browser-screenshots/`. A missing browser or
//! `node_modules` fails the test: it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use feige_client::{Client, Event, Events};
use feige_tests::ops_http::get;
use feige_tests::sdk::{next_event, next_message, PASSWORD};
use feige_tests::{DmPolicy, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

const ADMIN_TOKEN: &str = "browser-test-admin-token-0123456789";
const ROOM: u64 = 101;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Fails with the way to install what is missing.
fn require_tools() -> PathBuf {
    let chromium = std::env::var_os("FEIGE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "{} is missing: install Debian's browser with `sudo apt-get install chromium` \
         (or set FEIGE_CHROMIUM)",
        chromium.display()
    );
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "playwright-core is missing: run `npm ci --prefix tests/browser` (needs node and npm)"
    );
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install it with `sudo apt-get install nodejs npm`"
    );
    chromium
}

/// The browser script's side of the conversation.
struct Script {
    lines: Lines<BufReader<ChildStdout>>,
    stdin: ChildStdin,
}

impl Script {
    /// Waits for `STEP <name>` and returns its JSON; panics on `FAIL`, an early end or 90 s.
    async fn step(&mut self, name: &str) -> serde_json::Value {
        let wait = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                if let Some(fail) = line.strip_prefix("FAIL ") {
                    panic!("the browser script failed at step {name}: {fail}");
                }
                let Some(rest) = line.strip_prefix("STEP ") else {
                    println!("browser: {line}");
                    continue;
                };
                let (got, json) = rest.split_once(' ').unwrap_or((rest, "{}"));
                assert_eq!(got, name, "steps out of order");
                return serde_json::from_str(json).unwrap();
            }
            panic!("the browser script ended before step {name}");
        };
        tokio::time::timeout(Duration::from_secs(90), wait)
            .await
            .unwrap_or_else(|_| panic!("no step {name} from the browser within 90 s"))
    }

    async fn go(&mut self, name: &str) {
        self.stdin
            .write_all(format!("GO {name}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }
}

fn id(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id {key} in {v}"))
}

/// Waits for the room message `text` and checks that `from` sent it.
async fn room_message(events: &mut Events, from: u64, text: &str) {
    let m = next_event(events, |e| match e {
        Event::RoomMessage(m) if m.text == text => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(m.from_user, from, "{text:?} came from someone else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browser_users_and_a_rust_user_chat_and_the_admin_kicks_one() {
    require_tools();
    let server = TestServer::start_with(|c| {
        c.dm_policy = DmPolicy::Anyone;
        c.admin_token = Some(ADMIN_TOKEN.to_owned());
    })
    .await;
    let http = server.http_addr();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");

    let (rusty, mut events) = Client::connect(feige_client::ClientConfig {
        device: "rust".to_owned(),
        ..feige_client::ClientConfig::new(server.addr())
    })
    .await
    .unwrap();
    rusty.register("rusty", PASSWORD, "Rusty").await.unwrap();
    rusty.login("rusty", PASSWORD).await.unwrap();
    rusty.room_join(ROOM).await.unwrap();

    let mut child = Command::new("node")
        .arg(browser_dir().join("pages.mjs"))
        .arg(&http)
        .arg(ADMIN_TOKEN)
        .arg(&shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut script = Script {
        lines: BufReader::new(child.stdout.take().unwrap()).lines(),
        stdin: child.stdin.take().unwrap(),
    };

    let joined = script.step("joined").await;
    let (ann, ben) = (id(&joined, "ann"), id(&joined, "ben"));
    assert_eq!(id(&joined, "rusty"), rusty.session().unwrap().user_id);
    rusty.send_text(ben, "early word for ben").await.unwrap();
    script.go("early").await;

    script.step("room").await;
    room_message(&mut events, ann, "hello room from ann").await;
    rusty
        .room_send(ROOM, "hello browsers, rusty here")
        .await
        .unwrap();
    script.go("room").await;

    script.step("dm").await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = next_message(&mut events).await;
        got.push((m.from_user, m.text));
    }
    got.sort();
    let mut want = vec![
        (ann, "hi rusty, ann here".to_owned()),
        (ben, "hi rusty, ben here".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
    rusty.send_text(ann, "hello ann, from rust").await.unwrap();
    rusty.send_text(ben, "hello ben, from rust").await.unwrap();
    script.go("dm").await;

    script.step("kicked").await;
    rusty.send_text(ben, "while you were away").await.unwrap();
    script.go("away").await;
    script.step("resynced").await;
    script.step("done").await;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the browser script ends")
        .unwrap();
    assert!(status.success(), "the browser script exited with {status}");
    println!("screenshots: {}", shots.display());
    server.handle.shutdown().await;
}

#[tokio::test]
async fn the_pages_are_served_with_their_types_and_a_strict_policy() {
    let server = TestServer::start().await;
    let http = server.http_addr();
    for (path, kind) in [
        ("/home/index?appId=101", "text/html"),
        ("/admin", "text/html"),
        ("/web/chat.js", "text/javascript"),
        ("/web/ws.js", "text/javascript"),
        ("/web/common.css", "text/css"),
    ] {
        let res = get(&http, path, None).await;
        assert_eq!(res.status, 200, "{path}");
        assert!(
            res.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let csp = res.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    }
    let page = get(&http, "/home/index?appId=101", None).await;
    assert!(page.body.contains("/web/chat.js"));
    let missing = get(&http, "/web/nothing.js", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], 404);
    server.handle.shutdown().await;
}
