//! Verification codes, every refusal: a wrong code, too many tries, an expired code, a resend
//! within the cool-down, a reused code, a code for another purpose, the hourly limits per
//! destination and per client address, a failing sender (SMTP refusal, HTTP 500) that costs
//! nothing, bad requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use feige_client::{ClientError, Contact};
use feige_protocol::{pb, ErrorCode, RequestKind};
use feige_tests::codes::{SmsGateway, SmtpSink};
use feige_tests::sdk::{code, connect, PASSWORD};
use feige_tests::TestServer;

use pb::CodePurpose as P;

async fn server(
    sink: &SmtpSink,
    sms: &SmsGateway,
    tweak: impl FnOnce(&mut feige_server::Config),
) -> TestServer {
    TestServer::start_with(|c| {
        sink.configure(c);
        sms.configure(c);
        c.codes.cooldown_ms = 0;
        tweak(c);
    })
    .await
}

fn phone(p: &str) -> Contact {
    Contact::Phone(p.into())
}

fn email(a: &str) -> Contact {
    Contact::Email(a.into())
}

/// A code that is not `right`.
fn other_than(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

fn retry_after<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (ErrorCode, u64) {
    match r {
        Err(ClientError::Server {
            code,
            retry_after_ms,
            ..
        }) => (code, retry_after_ms),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_reused_and_misdirected_codes_and_too_many_tries() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |c| c.codes.max_attempts = 2).await;
    let addr = s.addr();
    let (c, _) = connect(&addr, "x").await;
    c.request_code(&phone("+15550100"), P::Login).await.unwrap();
    let right = sms.next().await.code();
    let wrong = other_than(&right);
    assert_eq!(
        code(c.login_code(&phone("+15550100"), wrong).await),
        ErrorCode::CodeInvalid
    );
    // A login code does not reset a password, nor register.
    let reset = c
        .reset_password(&phone("+15550100"), &right, "new-password-1")
        .await;
    assert_eq!(code(reset), ErrorCode::CodeInvalid);
    let reg = c
        .register_verified("alice", PASSWORD, "", &phone("+15550100"), &right)
        .await;
    assert_eq!(code(reg), ErrorCode::CodeInvalid);
    // One try left, then the code is used; a second use finds nothing.
    c.login_code(&phone("+15550100"), &right).await.unwrap();
    let (d, _) = connect(&addr, "y").await;
    assert_eq!(
        code(d.login_code(&phone("+15550100"), &right).await),
        ErrorCode::CodeInvalid
    );

    // Two wrong tries void a code: even the right one is refused then.
    d.request_code(&phone("+15550100"), P::Login).await.unwrap();
    let right = sms.next().await.code();
    let wrong = other_than(&right);
    for _ in 0..2 {
        assert_eq!(
            code(d.login_code(&phone("+15550100"), wrong).await),
            ErrorCode::CodeInvalid
        );
    }
    let voided = d.login_code(&phone("+15550100"), &right).await;
    assert_eq!(code(voided), ErrorCode::CodeAttemptsExceeded);
    // A new code replaces it.
    d.request_code(&phone("+15550100"), P::Login).await.unwrap();
    d.login_code(&phone("+15550100"), &sms.next().await.code())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_code_expires() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |c| c.codes.ttl_ms = 300).await;
    let (c, _) = connect(&s.addr(), "x").await;
    let sent = c
        .request_code(&email("a@example.com"), P::Register)
        .await
        .unwrap();
    assert_eq!(sent.expires_s, 1);
    let late = sink.next().await.code();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = c
        .register_verified("alice", PASSWORD, "", &email("a@example.com"), &late)
        .await;
    assert_eq!(code(r), ErrorCode::CodeExpired);
}

#[tokio::test]
async fn a_resend_within_the_cooldown_is_refused() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |c| c.codes.cooldown_ms = 60_000).await;
    let (c, _) = connect(&s.addr(), "x").await;
    let sent = c.request_code(&phone("+15550100"), P::Login).await.unwrap();
    assert_eq!(sent.cooldown_s, 60);
    sms.next().await;
    // Any purpose: the cool-down is the destination's.
    let (code, wait) = retry_after(c.request_code(&phone("+1 555 0100"), P::Register).await);
    assert_eq!(code, ErrorCode::CodeCooldown);
    assert!(wait > 50_000 && wait <= 60_000, "{wait}");
    // Another destination is not affected.
    c.request_code(&phone("+15550101"), P::Login).await.unwrap();
}

#[tokio::test]
async fn hourly_limits_per_destination_and_per_address() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |c| {
        c.codes.per_destination_per_hour = 2;
        c.codes.per_address_per_hour = 3;
        c.trusted_addrs.clear();
    })
    .await;
    let (c, _) = connect(&s.addr(), "x").await;
    for _ in 0..2 {
        c.request_code(&phone("+15550100"), P::Login).await.unwrap();
    }
    let (code1, wait) = retry_after(c.request_code(&phone("+15550100"), P::Login).await);
    assert_eq!(code1, ErrorCode::CodeRateLimited);
    assert!(wait > 3_500_000 && wait <= 3_600_000, "{wait}");
    // The address has one more send (the refused one was not charged), then none.
    c.request_code(&phone("+15550101"), P::Login).await.unwrap();
    let (code2, _) = retry_after(c.request_code(&phone("+15550102"), P::Login).await);
    assert_eq!(code2, ErrorCode::CodeRateLimited);
}

#[tokio::test]
async fn a_failing_sender_is_reported_and_costs_nothing() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |c| {
        c.codes.cooldown_ms = 60_000;
        c.codes.per_destination_per_hour = 1;
    })
    .await;
    let (c, _) = connect(&s.addr(), "x").await;
    sink.refuse(true);
    let failed = c.request_code(&email("a@example.com"), P::Register).await;
    assert_eq!(code(failed), ErrorCode::SenderFailed);
    sms.fail(true);
    let failed = c.request_code(&phone("+15550100"), P::Login).await;
    assert_eq!(code(failed), ErrorCode::SenderFailed);
    // Neither the cool-down nor the hourly limit was charged: both go through at once now.
    sink.refuse(false);
    sms.fail(false);
    c.request_code(&email("a@example.com"), P::Register)
        .await
        .unwrap();
    let mail = sink.next().await;
    c.register_verified("alice", PASSWORD, "", &email("a@example.com"), &mail.code())
        .await
        .unwrap();
    c.request_code(&phone("+15550100"), P::Login).await.unwrap();
    c.login_code(&phone("+15550100"), &sms.next().await.code())
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |_| {}).await;
    let (c, _) = connect(&s.addr(), "x").await;
    let bad_phone = c.request_code(&phone("12"), P::Login).await;
    assert_eq!(code(bad_phone), ErrorCode::InvalidArgument);
    let bad_email = c.request_code(&email("not-an-address"), P::Register).await;
    assert_eq!(code(bad_email), ErrorCode::InvalidArgument);
    let no_purpose = c
        .request(RequestKind::RequestCode(pb::RequestCode {
            channel: pb::CodeChannel::Email as i32,
            to: "a@example.com".into(),
            purpose: 0,
        }))
        .await;
    assert_eq!(code(no_purpose), ErrorCode::InvalidArgument);
    let both = c
        .request(RequestKind::LoginCode(pb::LoginCode {
            email: "a@example.com".into(),
            phone: "+15550100".into(),
            code: "123456".into(),
            device: String::new(),
        }))
        .await;
    assert_eq!(code(both), ErrorCode::InvalidArgument);
    let never_sent = c.login_code(&phone("+15550100"), "123456").await;
    assert_eq!(code(never_sent), ErrorCode::CodeInvalid);
    assert!(
        sink.nothing_within(100).await,
        "no e-mail for refused requests"
    );
}

/// The SMTP sender speaks STARTTLS and TLS from the first byte, checking the server's
/// certificate against `mail.ca_file`, and logs in with `mail.username`/`mail.password`;
/// without that CA the certificate is refused, and the send fails as any other.
#[tokio::test]
async fn smtp_over_starttls_and_tls_checks_the_certificate() {
    use feige_tests::codes::SinkTls;
    let pki = feige_tests::tls::TestPki::new();
    let sms = SmsGateway::start().await;
    for mode in [SinkTls::Starttls, SinkTls::Wrapper] {
        let sink = SmtpSink::start_tls(mode, Some(&pki)).await;
        let s = server(&sink, &sms, |c| {
            c.mail.ca_file = Some(pki.ca.clone());
            c.mail.username = "feige".into();
            c.mail.password = "relay secret".into();
        })
        .await;
        let (c, _) = connect(&s.addr(), "x").await;
        c.request_code(&email("a@example.com"), P::Register)
            .await
            .unwrap();
        let mail = sink.next().await;
        assert_eq!(sink.logins(), vec!["feige:relay secret".to_owned()]);
        c.register_verified("alice", PASSWORD, "", &email("a@example.com"), &mail.code())
            .await
            .unwrap();
        let untrusted = server(&sink, &sms, |_| {}).await;
        let (d, _) = connect(&untrusted.addr(), "x").await;
        let refused = d.request_code(&email("b@example.com"), P::Register).await;
        assert_eq!(code(refused), ErrorCode::SenderFailed, "{mode:?}");
    }
}
