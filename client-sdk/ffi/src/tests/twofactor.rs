//! Two-factor login and closing an account through `feige_call`: `login` answers
//! SECOND_FACTOR_REQUIRED with a challenge, `login_totp` completes it.

use feige_tests::totp::{code, now_step};
use serde_json::json;

use super::{creds, FeigeStatus, Server, C};

#[test]
fn login_needs_the_second_factor_then_close_account() {
    let server = Server::start();
    let addr = server.addr();
    let alice = C::connect(&addr);
    alice.ok("register", creds("alice"));
    alice.ok("login", creds("alice"));
    assert_eq!(alice.ok("whoami", json!({}))["totp_enabled"], false);
    let setup = alice.ok("totp_setup", json!({}));
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert!(setup["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Feige:alice?secret="));
    alice.fails("totp_enable", json!({ "code": "000000x" }), "TOTP_INVALID");
    let step = now_step();
    let codes = alice.ok("totp_enable", json!({ "code": code(&secret, step - 1) }));
    let recovery = codes["recovery_codes"].as_array().unwrap();
    assert_eq!(recovery.len(), 10);
    assert_eq!(alice.ok("whoami", json!({}))["totp_enabled"], true);

    // A password login answers SECOND_FACTOR_REQUIRED with the challenge in the error JSON.
    let phone = C::connect(&addr);
    let (status, err) = phone.run("login", creds("alice"));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32, "{err}");
    assert_eq!(err["error"]["code"], "SECOND_FACTOR_REQUIRED");
    let challenge = err["error"]["challenge"].as_str().unwrap().to_owned();
    assert_eq!(challenge.len(), 32);
    phone.fails("whoami", json!({}), "NOT_LOGGED_IN");
    phone.fails(
        "login_totp",
        json!({ "challenge": challenge, "code": "000000" }),
        "TOTP_INVALID",
    );
    let session = phone.ok(
        "login_totp",
        json!({ "challenge": challenge, "code": recovery[0] }),
    );
    assert_eq!(session["profile"]["username"], "alice");
    assert_eq!(session["token"].as_str().unwrap().len(), 64);
    assert_eq!(phone.ok("whoami", json!({}))["username"], "alice");
    phone.fails(
        "login_totp",
        json!({ "challenge": challenge, "code": recovery[1] }),
        "ALREADY_LOGGED_IN",
    );
    let other = C::connect(&addr);
    other.fails(
        "login_totp",
        json!({ "challenge": challenge, "code": recovery[1] }),
        "CHALLENGE_INVALID",
    );

    // Closing needs the code too; then the account is closed for every client.
    alice.fails(
        "close_account",
        json!({ "password": "password123" }),
        "TOTP_INVALID",
    );
    alice.ok(
        "close_account",
        json!({ "password": "password123", "code": recovery[1] }),
    );
    let kicked = phone.push_of("kicked");
    assert_eq!(kicked["code"], "ACCOUNT_CLOSED");
    other.fails("login", creds("alice"), "ACCOUNT_CLOSED");
}
