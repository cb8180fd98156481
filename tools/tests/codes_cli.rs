//! `feige code`, `feige register --email --code`, `feige login --phone --code`,
//! `feige reset-password` and `feige change-contact` against a real server on port 0 whose
//! e-mail goes to an in-process SMTP sink and SMS to a fake gateway, in JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{command, feige_json as feige, PASSWORD};
use feige_tests::codes::{SmsGateway, SmtpSink};
use feige_tests::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_register_login_reset_and_change() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = TestServer::start_with(|c| {
        sink.configure(c);
        sms.configure(c);
        c.codes.cooldown_ms = 0;
    })
    .await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();

    // Register with an e-mailed code.
    let sent = feige(
        &addr,
        st,
        None,
        &["code", "--email", "a@example.com", "--purpose", "register"],
    )
    .await
    .unwrap();
    assert_eq!(sent[0]["type"], "code_sent");
    assert_eq!(sent[0]["expires_s"], 300);
    let code = sink.next().await.code();
    let wrong = feige(
        &addr,
        st,
        None,
        &[
            "register",
            "alice",
            "--email",
            "a@example.com",
            "--code",
            "x",
        ],
    )
    .await;
    assert_eq!(wrong.unwrap_err(), "CODE_INVALID");
    let made = feige(
        &addr,
        st,
        None,
        &[
            "register",
            "alice",
            "--email",
            "a@example.com",
            "--code",
            &code,
        ],
    )
    .await
    .unwrap();
    assert_eq!(made[0]["username"], "alice");
    let login = feige(&addr, st, Some("alice"), &["login"]).await.unwrap();
    assert_eq!(login[0]["username"], "alice");

    // Change the e-mail with a code sent to the new one.
    feige(
        &addr,
        st,
        Some("alice"),
        &["code", "--email", "b@example.com", "--purpose", "change"],
    )
    .await
    .unwrap();
    let code = sink.next().await.code();
    let p = feige(
        &addr,
        st,
        Some("alice"),
        &[
            "change-contact",
            "--email",
            "b@example.com",
            "--code",
            &code,
        ],
    )
    .await
    .unwrap();
    assert_eq!(p[0]["email"], "b@example.com");

    // Reset the password by the new e-mail: the saved session ends.
    feige(
        &addr,
        st,
        None,
        &["code", "--email", "b@example.com", "--purpose", "reset"],
    )
    .await
    .unwrap();
    let code = sink.next().await.code();
    let out = command(
        &addr,
        st,
        &[
            "--json",
            "reset-password",
            "--email",
            "b@example.com",
            "--code",
            &code,
        ],
    )
    .env("FEIGE_NEW_PASSWORD", "another password")
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sessions_revoked"], "1");
    let old = feige(&addr, st, Some("alice"), &["whoami"]).await;
    assert_eq!(old.unwrap_err(), "INVALID_TOKEN");
    assert_ne!(PASSWORD, "another password");

    // A phone logs in by SMS code and gets an account of its own.
    feige(
        &addr,
        st,
        None,
        &["code", "--phone", "+15550100", "--purpose", "login"],
    )
    .await
    .unwrap();
    let code = sms.next().await.code();
    let session = feige(
        &addr,
        st,
        None,
        &["login", "--phone", "+15550100", "--code", &code],
    )
    .await
    .unwrap();
    let name = session[0]["username"].as_str().unwrap().to_owned();
    assert!(name.starts_with('u'), "{name}");
    let me = feige(&addr, st, None, &["whoami"]).await.unwrap();
    assert_eq!(me[0]["username"], name.as_str());
    let neither = feige(&addr, st, None, &["code", "--purpose", "login"]).await;
    assert_eq!(neither.unwrap_err(), "INVALID_ARGUMENT");
}
