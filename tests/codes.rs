//! Verification codes, the flows: a code e-mailed through a real SMTP exchange (an in-process
//! sink) registers an account with a verified e-mail; an SMS code (a fake HTTP gateway) logs
//! a new phone in and creates its account; a code resets a forgotten password and ends every
//! session; a code to a new address changes a verified e-mail; `registration_verify`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::{Client, Contact, Event, Events};
use feige_protocol::{pb, ErrorCode};
use feige_server::verify::config::RegistrationVerify;
use feige_tests::codes::{SmsGateway, SmtpSink};
use feige_tests::sdk::{code, connect, next_event, PASSWORD};
use feige_tests::TestServer;

use pb::CodePurpose as P;

/// A server whose e-mail goes to `sink` and SMS to `sms`, with no cool-down (the refusal
/// tests check it).
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

fn email(a: &str) -> Contact {
    Contact::Email(a.into())
}

fn phone(p: &str) -> Contact {
    Contact::Phone(p.into())
}

async fn kicked(events: &mut Events) -> ErrorCode {
    next_event(events, |e| match e {
        Event::Kicked { code, .. } => Some(code),
        _ => None,
    })
    .await
}

/// Registers `name` with `address` verified through the sink.
async fn register_by_email(addr: &str, sink: &SmtpSink, name: &str, address: &str) -> Client {
    let (c, _) = connect(addr, "setup").await;
    c.request_code(&email(address), P::Register).await.unwrap();
    let mail = sink.next().await;
    c.register_verified(name, PASSWORD, "", &email(address), &mail.code())
        .await
        .unwrap();
    c
}

#[tokio::test]
async fn an_emailed_code_registers_an_account_with_a_verified_email() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |_| {}).await;
    let addr = s.addr();
    let (c, _) = connect(&addr, "phone").await;
    let sent = c
        .request_code(&email("Alice@Example.COM"), P::Register)
        .await
        .unwrap();
    assert_eq!((sent.cooldown_s, sent.expires_s), (0, 300));
    let mail = sink.next().await;
    assert_eq!(mail.to, vec!["alice@example.com".to_owned()]);
    assert!(
        mail.data.contains("From: Feige <noreply@feige.test>"),
        "{}",
        mail.data
    );
    let ok = c
        .register_verified(
            "alice",
            PASSWORD,
            "Alice",
            &email("alice@example.com"),
            &mail.code(),
        )
        .await
        .unwrap();
    assert!(!ok.pending);
    let session = c.login("alice", PASSWORD).await.unwrap();
    let profile = session.profile.unwrap();
    assert_eq!(profile.email, "alice@example.com");
    assert!(profile.email_verified && !profile.phone_verified);

    // The address is taken now: no register code for it, and no second account.
    let (d, _) = connect(&addr, "other").await;
    let taken = d
        .request_code(&email("ALICE@example.com"), P::Register)
        .await;
    assert_eq!(code(taken), ErrorCode::ContactTaken);
    // A code works once, for the address it was sent to.
    d.request_code(&email("bob@example.com"), P::Register)
        .await
        .unwrap();
    let bobs = sink.next().await.code();
    let wrong_address = d
        .register_verified("bob", PASSWORD, "", &email("carol@example.com"), &bobs)
        .await;
    assert_eq!(code(wrong_address), ErrorCode::CodeInvalid);
    d.register_verified("bob", PASSWORD, "", &email("bob@example.com"), &bobs)
        .await
        .unwrap();
    // The e-mail code logs in too.
    let (e, _) = connect(&addr, "laptop").await;
    e.request_code(&email("bob@example.com"), P::Login)
        .await
        .unwrap();
    let s2 = e
        .login_code(&email("bob@example.com"), &sink.next().await.code())
        .await
        .unwrap();
    assert_eq!(s2.profile.unwrap().username, "bob");
    // An e-mail no account verified gets no login code.
    let unknown = e.request_code(&email("nobody@example.com"), P::Login).await;
    assert_eq!(code(unknown), ErrorCode::NotFound);
}

#[tokio::test]
async fn an_sms_code_logs_a_new_phone_in_with_a_new_account() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |_| {}).await;
    let addr = s.addr();
    let (c, _events) = connect(&addr, "phone").await;
    c.request_code(&phone("+1 (555) 010-0123"), P::Login)
        .await
        .unwrap();
    let req = sms.next().await;
    assert_eq!(req.method, "GET");
    assert!(
        req.target.starts_with("/send?to=%2B15550100123&code="),
        "{}",
        req.target
    );
    assert!(req.target.ends_with("&key=test-key"), "{}", req.target);
    let session = c
        .login_code(&phone("+15550100123"), &req.code())
        .await
        .unwrap();
    let me = session.profile.unwrap();
    assert!(
        me.username.starts_with('u') && me.username.len() == 11,
        "{}",
        me.username
    );
    assert_eq!(me.nickname, "User 0123");
    assert_eq!(me.phone, "+15550100123");
    assert!(me.phone_verified);
    // No password yet: the first is set without an old one, then it logs in.
    assert_eq!(c.change_password("", "first-password").await.unwrap(), 0);
    let (d, _) = connect(&addr, "desktop").await;
    d.login(&me.username, "first-password").await.unwrap();
    // A second code login finds the same account.
    let (e, _) = connect(&addr, "tablet").await;
    e.request_code(&phone("+15550100123"), P::Login)
        .await
        .unwrap();
    let again = e
        .login_code(&phone("+15550100123"), &sms.next().await.code())
        .await
        .unwrap();
    assert_eq!(again.user_id, session.user_id);
    assert_eq!(e.whoami().await.unwrap().user_id, session.user_id);
}

#[tokio::test]
async fn a_reset_code_sets_a_new_password_and_ends_every_session() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |_| {}).await;
    let addr = s.addr();
    register_by_email(&addr, &sink, "alice", "alice@example.com").await;
    let (a1, mut ev1) = connect(&addr, "one").await;
    a1.login("alice", PASSWORD).await.unwrap();
    let (a2, mut ev2) = connect(&addr, "two").await;
    a2.login("alice", PASSWORD).await.unwrap();

    let (c, _) = connect(&addr, "lost").await;
    c.request_code(&email("alice@example.com"), P::Reset)
        .await
        .unwrap();
    let reset_code = sink.next().await.code();
    // A logged-in connection cannot reset (it uses change_password).
    let logged_in = a1
        .reset_password(&email("alice@example.com"), &reset_code, "new-password-1")
        .await;
    assert_eq!(code(logged_in), ErrorCode::AlreadyLoggedIn);
    let short = c
        .reset_password(&email("alice@example.com"), &reset_code, "short")
        .await;
    assert_eq!(code(short), ErrorCode::InvalidArgument);
    let revoked = c
        .reset_password(&email("alice@example.com"), &reset_code, "new-password-1")
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    assert_eq!(kicked(&mut ev1).await, ErrorCode::InvalidToken);
    assert_eq!(kicked(&mut ev2).await, ErrorCode::InvalidToken);
    let old = c.login("alice", PASSWORD).await;
    assert_eq!(code(old), ErrorCode::BadCredentials);
    c.login("alice", "new-password-1").await.unwrap();
    // No account: no reset code.
    let (d, _) = connect(&addr, "x").await;
    let none = d.request_code(&phone("+4930123456"), P::Reset).await;
    assert_eq!(code(none), ErrorCode::NotFound);
}

#[tokio::test]
async fn a_verified_contact_changes_only_with_a_code_sent_to_the_new_one() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |_| {}).await;
    let addr = s.addr();
    register_by_email(&addr, &sink, "alice", "alice@example.com").await;
    register_by_email(&addr, &sink, "bob", "bob@example.com").await;
    let (a, _) = connect(&addr, "one").await;
    a.login("alice", PASSWORD).await.unwrap();
    let (a2, mut ev2) = connect(&addr, "two").await;
    a2.login("alice", PASSWORD).await.unwrap();

    // Not through the profile.
    let update = pb::UpdateProfile {
        email: Some("mallory@example.com".into()),
        ..Default::default()
    };
    assert_eq!(
        code(a.update_profile(update).await),
        ErrorCode::VerificationRequired
    );
    // Not to an address another account verified.
    let taken = a.request_code(&email("bob@example.com"), P::Change).await;
    assert_eq!(code(taken), ErrorCode::ContactTaken);
    // Not before login.
    let (anon, _) = connect(&addr, "anon").await;
    let anon_change = anon
        .request_code(&email("new@example.com"), P::Change)
        .await;
    assert_eq!(code(anon_change), ErrorCode::NotLoggedIn);

    a.request_code(&email("new@example.com"), P::Change)
        .await
        .unwrap();
    let mail = sink.next().await;
    assert_eq!(mail.to, vec!["new@example.com".to_owned()]);
    // Bob cannot use alice's change code, even for the same address.
    let (b, _) = connect(&addr, "bob").await;
    b.login("bob", PASSWORD).await.unwrap();
    assert_eq!(
        code(
            b.change_contact(&email("new@example.com"), &mail.code())
                .await
        ),
        ErrorCode::CodeInvalid
    );
    let profile = a
        .change_contact(&email("new@example.com"), &mail.code())
        .await
        .unwrap();
    assert_eq!(profile.email, "new@example.com");
    assert!(profile.email_verified);
    let pushed = next_event(&mut ev2, |e| match e {
        Event::ProfileUpdated(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(pushed.email, "new@example.com");
    // A phone is added the same way, by SMS.
    a.request_code(&phone("+86 138 0013 8000"), P::Change)
        .await
        .unwrap();
    let p = a
        .change_contact(&phone("+8613800138000"), &sms.next().await.code())
        .await
        .unwrap();
    assert!(p.phone_verified && p.email_verified);
    // The old address is free again.
    let (d, _) = connect(&addr, "dave").await;
    d.request_code(&email("alice@example.com"), P::Register)
        .await
        .unwrap();
}

#[tokio::test]
async fn registration_verify_requires_the_chosen_contact() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |c| {
        c.registration_verify = RegistrationVerify::Email
    })
    .await;
    let addr = s.addr();
    let (c, _) = connect(&addr, "x").await;
    let plain = c.register("alice", PASSWORD, "").await;
    assert_eq!(code(plain), ErrorCode::VerificationRequired);
    let no_code = c
        .register_verified("alice", PASSWORD, "", &email("alice@example.com"), "")
        .await;
    assert_eq!(code(no_code), ErrorCode::VerificationRequired);
    let by_phone = c
        .register_verified("alice", PASSWORD, "", &phone("+15550100"), "123456")
        .await;
    assert_eq!(code(by_phone), ErrorCode::VerificationRequired);
    // A new phone cannot make an account by logging in.
    let new_phone = c.request_code(&phone("+15550100"), P::Login).await;
    assert_eq!(code(new_phone), ErrorCode::NotFound);
    register_by_email(&addr, &sink, "alice", "alice@example.com").await;
    drop(s);

    // "phone", combined with admin approval: the new account waits.
    let s = server(&sink, &sms, |c| {
        c.registration_verify = RegistrationVerify::Phone;
        c.registration = feige_server::config::Registration::Approval;
    })
    .await;
    let (c, _) = connect(&s.addr(), "x").await;
    c.request_code(&email("bob@example.com"), P::Register)
        .await
        .unwrap();
    let by_email = c
        .register_verified(
            "bob",
            PASSWORD,
            "",
            &email("bob@example.com"),
            &sink.next().await.code(),
        )
        .await;
    assert_eq!(code(by_email), ErrorCode::VerificationRequired);
    c.request_code(&phone("+15550199"), P::Register)
        .await
        .unwrap();
    let ok = c
        .register_verified(
            "bob",
            PASSWORD,
            "",
            &phone("+15550199"),
            &sms.next().await.code(),
        )
        .await
        .unwrap();
    assert!(ok.pending);
    c.request_code(&phone("+15550100"), P::Login).await.unwrap();
    let new_phone = c
        .login_code(&phone("+15550100"), &sms.next().await.code())
        .await;
    assert_eq!(code(new_phone), ErrorCode::PendingApproval);
}

#[tokio::test]
async fn over_websocket_a_code_logs_in_as_login_does() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |_| {}).await;
    let mut ws = feige_tests::ws::Ws::connect(&s.http_addr()).await;
    let data = serde_json::json!({ "channel": "sms", "to": "+15550100", "purpose": "login" });
    let r = ws.call("request_code", data).await;
    assert_eq!(r["response"]["code"], 200, "{r}");
    assert_eq!(r["response"]["data"]["expires_s"], 300);
    let data = serde_json::json!({ "phone": "+15550100", "code": sms.next().await.code() });
    let r = ws.call("login_code", data).await;
    assert_eq!(r["response"]["code"], 200, "{r}");
    let session = &r["response"]["data"];
    assert_eq!(session["heartbeat_ms"], 30_000);
    assert_eq!(session["profile"]["phone_verified"], true);
    let me = ws.call("whoami", serde_json::json!({})).await;
    assert_eq!(me["response"]["data"]["user_id"], session["user_id"]);
    let again = ws
        .call(
            "login_code",
            serde_json::json!({ "phone": "+15550100", "code": "123456" }),
        )
        .await;
    assert_eq!(
        again["response"]["codeMsg"]
            .as_str()
            .unwrap_or_default()
            .split(':')
            .next(),
        Some("ALREADY_LOGGED_IN"),
        "{again}"
    );
}

#[tokio::test]
async fn an_sms_gateway_may_take_a_post_with_a_body_template() {
    let (sink, sms) = (SmtpSink::start().await, SmsGateway::start().await);
    let s = server(&sink, &sms, |c| {
        c.sms.method = feige_server::verify::config::SmsMethod::Post;
        c.sms.url = format!("http://127.0.0.1:{}/api/sms?key={{key}}", sms.port);
        c.sms.body = r#"{"phone":"{to}","text":"code={code}"}"#.into();
    })
    .await;
    let (c, _) = connect(&s.addr(), "x").await;
    c.request_code(&phone("+44 20 7946 0000"), P::Login)
        .await
        .unwrap();
    let req = sms.next().await;
    assert_eq!(
        (req.method.as_str(), req.target.as_str()),
        ("POST", "/api/sms?key=test-key")
    );
    assert!(
        req.body
            .starts_with(r#"{"phone":"+442079460000","text":"code="#),
        "{}",
        req.body
    );
    let code = feige_tests::codes::code_after(&req.body, "code=").unwrap();
    c.login_code(&phone("+442079460000"), &code).await.unwrap();
}
