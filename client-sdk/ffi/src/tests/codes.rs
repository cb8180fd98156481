//! The verification-code methods of `feige_call` against a real server whose SMS go to a fake
//! gateway: `request_code`, `login_code` (a new phone's account; the session kept and resumed
//! after a server restart, as `login`'s), the refusals as `FEIGE_ERR_SERVER` with their codes.

use feige_tests::codes::SmsGateway;
use feige_tests::TestServer;
use serde_json::json;

use super::{wait_for, Server, C};

#[test]
fn request_code_then_login_code_keeps_the_session_across_a_restart() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sms = rt.block_on(SmsGateway::start());
    let server = rt.block_on(TestServer::start_with(|c| sms.configure(c)));
    let mut server = Server {
        rt,
        server: Some(server),
    };
    let addr = server.addr();
    let c = C::connect(&addr);

    c.fails(
        "request_code",
        json!({ "channel": "sms", "to": "12", "purpose": "login" }),
        "INVALID_ARGUMENT",
    );
    let phone = "+15550100";
    let sent = c.ok(
        "request_code",
        json!({ "channel": "sms", "to": phone, "purpose": "login" }),
    );
    assert_eq!(sent["expires_s"], 300);
    assert_eq!(sent["cooldown_s"], 60);
    let code = server.rt.block_on(sms.next()).code();
    let again = json!({ "channel": "sms", "to": phone, "purpose": "login" });
    c.fails("request_code", again, "CODE_COOLDOWN");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    c.fails(
        "login_code",
        json!({ "phone": phone, "code": wrong }),
        "CODE_INVALID",
    );
    let session = c.ok("login_code", json!({ "phone": phone, "code": code }));
    assert_eq!(session["device"], "test");
    assert_eq!(session["profile"]["phone"], phone);
    assert_eq!(session["profile"]["phone_verified"], true);
    // Before any other call, whose wait drops the events it passes.
    let mut seen = Vec::new();
    wait_for(&c, &mut seen, |j| j["state"] == "synced");

    // The server restarts on the same address and data: the client resumes the session.
    let TestServer { handle, dir } = server.server.take().unwrap();
    server.rt.block_on(handle.shutdown());
    wait_for(&c, &mut seen, |j| j["state"] == "disconnected");
    let listen: std::net::SocketAddr = addr.parse().unwrap();
    let data_dir = dir.path().to_owned();
    server.server = Some(server.rt.block_on(TestServer::start_with(|config| {
        sms.configure(config);
        config.listen = listen;
        config.data_dir = data_dir;
    })));
    wait_for(&c, &mut seen, |j| j["state"] == "synced");
    assert_eq!(c.ok("whoami", json!({}))["user_id"], session["user_id"]);
    c.fails(
        "login_code",
        json!({ "phone": phone, "code": code }),
        "ALREADY_LOGGED_IN",
    );
    drop(c);
    drop(server);
    drop(dir);
}
