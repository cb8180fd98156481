//! `feige 2fa setup|enable|disable`, `feige login --totp` and `feige close-account` against a
//! real server on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{feige, feige_json};
use feige_tests::totp::{code, fresh_step};
use feige_tests::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_login_and_closing_from_the_cli() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    feige_json(&addr, st, None, &["register", "alice"])
        .await
        .unwrap();
    feige_json(&addr, st, Some("alice"), &["login"])
        .await
        .unwrap();
    // The human form draws the URI as a QR code.
    let shown = feige(&addr, st, &["--user", "alice", "2fa", "setup"], None).await;
    assert!(shown.ok, "{}", shown.stderr);
    assert!(shown.stdout.contains("otpauth://totp/Feige:alice?secret="));
    assert!(shown.stdout.contains('█') || shown.stdout.contains('▀'));
    let step = fresh_step().await;
    let setup = feige_json(&addr, st, Some("alice"), &["2fa", "setup"])
        .await
        .unwrap();
    let secret = setup[0]["secret"].as_str().unwrap().to_owned();
    let wrong = feige_json(&addr, st, Some("alice"), &["2fa", "enable", "000000x"]).await;
    assert_eq!(wrong.unwrap_err(), "TOTP_INVALID");
    let on = feige_json(
        &addr,
        st,
        Some("alice"),
        &["2fa", "enable", &code(&secret, step)],
    )
    .await
    .unwrap();
    let recovery: Vec<String> = on[0]["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);

    // A login needs the code: none given (stdin closed), a wrong one, then a recovery code.
    let none = feige(&addr, st, &["--json", "--user", "alice", "login"], None).await;
    assert!(
        !none.ok && none.stderr.contains("INVALID_ARGUMENT"),
        "{}",
        none.stderr
    );
    let bad = feige_json(&addr, st, Some("alice"), &["login", "--totp", "123456"]).await;
    assert_eq!(bad.unwrap_err(), "TOTP_INVALID");
    let ok = feige_json(&addr, st, Some("alice"), &["login", "--totp", &recovery[0]])
        .await
        .unwrap();
    assert_eq!(ok[0]["username"], "alice");
    let me = feige_json(&addr, st, Some("alice"), &["whoami"])
        .await
        .unwrap();
    assert_eq!(me[0]["username"], "alice");

    // Closing needs the code too; afterwards the login is refused.
    let refused = feige_json(&addr, st, Some("alice"), &["close-account"]).await;
    assert_eq!(refused.unwrap_err(), "TOTP_INVALID");
    feige_json(
        &addr,
        st,
        Some("alice"),
        &["close-account", "--totp", &recovery[1]],
    )
    .await
    .unwrap();
    let closed = feige_json(&addr, st, Some("alice"), &["login", "--totp", &recovery[2]]).await;
    assert_eq!(closed.unwrap_err(), "ACCOUNT_CLOSED");
    s.handle.shutdown().await;
}
