//! Two-factor login (TOTP) through the Rust client SDK: set up, enable, log in with a TOTP or
//! a recovery code, disable, and every refusal. Codes are computed here from the secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::Client;
use feige_protocol::ErrorCode;
use feige_tests::sdk::{code, connect, login, register, PASSWORD};
use feige_tests::totp::{base32_decode, code as totp, fresh_step};
use feige_tests::TestServer;

/// Sets up and enables two-factor login for the logged-in `c` with the code of step
/// `step - 1`; returns the secret and the recovery codes.
async fn enable(c: &Client, step: u64) -> (String, Vec<String>) {
    let s = c.totp_setup().await.unwrap();
    let codes = c.totp_enable(&totp(&s.secret, step - 1)).await.unwrap();
    (s.secret, codes)
}

/// A password login that must answer SECOND_FACTOR_REQUIRED; returns the challenge.
async fn challenge(c: &Client, name: &str) -> String {
    let e = c.login(name, PASSWORD).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::SecondFactorRequired), "{e}");
    e.challenge().expect("a challenge").to_owned()
}

#[tokio::test]
async fn setup_enable_and_log_in_with_a_totp_or_recovery_code() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let id = register(&addr, "alice").await;
    let (a, _) = login(&addr, "alice", "laptop").await;
    assert!(!a.whoami().await.unwrap().totp_enabled);
    assert_eq!(
        code(a.totp_enable("123456").await),
        ErrorCode::InvalidArgument
    );
    let step = fresh_step().await;
    let setup = a.totp_setup().await.unwrap();
    assert_eq!(base32_decode(&setup.secret).len(), 20);
    assert!(
        setup.otpauth_uri.starts_with(&format!(
            "otpauth://totp/Feige:alice?secret={}&issuer=Feige",
            setup.secret
        )),
        "{}",
        setup.otpauth_uri
    );
    // A wrong code, and codes two steps off either way, do not enable.
    let secret = setup.secret;
    assert_eq!(code(a.totp_enable("000000x").await), ErrorCode::TotpInvalid);
    for off in [step + 2, step - 2] {
        assert_eq!(
            code(a.totp_enable(&totp(&secret, off)).await),
            ErrorCode::TotpInvalid
        );
    }
    let recovery = a.totp_enable(&totp(&secret, step - 1)).await.unwrap();
    assert_eq!(recovery.len(), 10);
    assert!(a.whoami().await.unwrap().totp_enabled);
    assert_eq!(code(a.totp_setup().await), ErrorCode::InvalidArgument);

    // A password login needs the second factor; a wrong code leaves the challenge usable.
    let (b, _) = connect(&addr, "phone").await;
    assert_eq!(
        code(b.login("alice", "wrong-password").await),
        ErrorCode::BadCredentials
    );
    let ch = challenge(&b, "alice").await;
    assert_eq!(code(b.whoami().await), ErrorCode::NotLoggedIn);
    assert_eq!(
        code(b.login_totp(&ch, "111111").await),
        ErrorCode::TotpInvalid
    );
    assert_eq!(
        code(b.login_totp(&ch, &totp(&secret, step + 2)).await),
        ErrorCode::TotpInvalid
    );
    let session = b.login_totp(&ch, &totp(&secret, step)).await.unwrap();
    assert_eq!(session.user_id, id);
    assert_eq!(session.device, "phone");
    assert_eq!(b.whoami().await.unwrap().username, "alice");
    // The challenge is spent; an unknown one is refused alike.
    let (c, _) = connect(&addr, "tablet").await;
    assert_eq!(
        code(c.login_totp(&ch, &totp(&secret, step + 1)).await),
        ErrorCode::ChallengeInvalid
    );
    assert_eq!(
        code(
            c.login_totp("00112233445566778899aabbccddeeff", "123456")
                .await
        ),
        ErrorCode::ChallengeInvalid
    );
    // A code used once is not accepted again within its window.
    let ch = challenge(&c, "alice").await;
    assert_eq!(
        code(c.login_totp(&ch, &totp(&secret, step)).await),
        ErrorCode::TotpInvalid
    );
    // A recovery code works once (as typed: case and dashes do not matter).
    let typed = recovery[0].to_uppercase().replace('-', "");
    c.login_totp(&ch, &typed).await.unwrap();
    let (d, _) = connect(&addr, "desk").await;
    let ch = challenge(&d, "alice").await;
    assert_eq!(
        code(d.login_totp(&ch, &recovery[0]).await),
        ErrorCode::TotpInvalid
    );
    d.login_totp(&ch, &recovery[1]).await.unwrap();

    // Resuming with a token needs no second factor.
    let (e, _) = connect(&addr, "phone").await;
    let resumed = e.resume(&session.token).await.unwrap();
    assert_eq!(resumed.user_id, id);
    for client in [a, b, c, d, e] {
        client.close().await;
    }
    s.handle.shutdown().await;
}

#[tokio::test]
async fn a_challenge_allows_five_tries_and_expires() {
    let s = TestServer::start_with(|c| c.second_factor_ttl_ms = 400).await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let (a, _) = login(&addr, "alice", "laptop").await;
    let step = fresh_step().await;
    let (secret, _) = enable(&a, step).await;
    let (b, _) = connect(&addr, "phone").await;
    let ch = challenge(&b, "alice").await;
    for _ in 0..5 {
        assert_eq!(
            code(b.login_totp(&ch, "000000").await),
            ErrorCode::TotpInvalid
        );
    }
    // Out of tries: even the right code finds the challenge gone.
    assert_eq!(
        code(b.login_totp(&ch, &totp(&secret, step)).await),
        ErrorCode::ChallengeInvalid
    );
    let ch = challenge(&b, "alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        code(b.login_totp(&ch, &totp(&secret, step)).await),
        ErrorCode::ChallengeInvalid
    );
    // A fresh challenge still takes the code (it was not spent by the refusals).
    let ch = challenge(&b, "alice").await;
    b.login_totp(&ch, &totp(&secret, step)).await.unwrap();
    a.close().await;
    b.close().await;
    s.handle.shutdown().await;
}

#[tokio::test]
async fn disable_needs_a_right_code() {
    let s = TestServer::start().await;
    let addr = s.addr();
    register(&addr, "alice").await;
    let (a, _) = login(&addr, "alice", "laptop").await;
    assert_eq!(
        code(a.totp_disable("123456").await),
        ErrorCode::InvalidArgument
    );
    let step = fresh_step().await;
    let (secret, recovery) = enable(&a, step).await;
    assert_eq!(code(a.totp_disable("").await), ErrorCode::TotpInvalid);
    assert_eq!(code(a.totp_disable("654321").await), ErrorCode::TotpInvalid);
    assert_eq!(
        code(a.totp_disable(&totp(&secret, step + 2)).await),
        ErrorCode::TotpInvalid
    );
    assert_eq!(
        code(a.totp_disable("zzzzz-zzzzz").await),
        ErrorCode::TotpInvalid
    );
    a.totp_disable(&recovery[3]).await.unwrap();
    assert!(!a.whoami().await.unwrap().totp_enabled);
    // Off: the password alone logs in again, and the old recovery codes are gone.
    let (b, _) = login(&addr, "alice", "phone").await;
    assert_eq!(
        code(b.totp_disable(&recovery[4]).await),
        ErrorCode::InvalidArgument
    );
    a.close().await;
    b.close().await;
    s.handle.shutdown().await;
}
