//! Two-factor login over the WebSocket gateway: `login` answers SECOND_FACTOR_REQUIRED with
//! the challenge in `data`, `login_totp` answers as `login` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_tests::sdk::{self, PASSWORD};
use feige_tests::ws::Ws;
use feige_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn login_then_login_totp() {
    let s = TestServer::start().await;
    sdk::register(&s.addr(), "alice").await;
    let (a, _) = sdk::login(&s.addr(), "alice", "laptop").await;
    let recovery = {
        let secret = a.totp_setup().await.unwrap().secret;
        let step = feige_tests::totp::fresh_step().await;
        a.totp_enable(&feige_tests::totp::code(&secret, step))
            .await
            .unwrap()
    };
    let mut ws = Ws::connect(&s.http_addr()).await;
    let r = ws
        .call(
            "login",
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r["response"]["code"], 401, "{r}");
    let code_msg = r["response"]["codeMsg"].as_str().unwrap();
    assert!(code_msg.starts_with("SECOND_FACTOR_REQUIRED"), "{r}");
    let challenge = r["response"]["data"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = ws
        .call(
            "login_totp",
            json!({ "challenge": challenge, "code": "000000" }),
        )
        .await;
    assert!(
        r["response"]["codeMsg"]
            .as_str()
            .unwrap()
            .starts_with("TOTP_INVALID"),
        "{r}"
    );
    let r = ws
        .call(
            "login_totp",
            json!({ "challenge": challenge, "code": recovery[0] }),
        )
        .await;
    assert_eq!(r["response"]["code"], 200, "{r}");
    assert_eq!(r["response"]["data"]["device"], "web");
    assert_eq!(r["response"]["data"]["heartbeat_ms"], 30_000);
    let me = ws.call("whoami", json!({})).await;
    assert_eq!(me["response"]["data"]["username"], "alice");
    assert_eq!(me["response"]["data"]["totp_enabled"], true);
    a.close().await;
    s.handle.shutdown().await;
}
