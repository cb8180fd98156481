//! TLS on the listener: a verifying client works end to end, a client expecting another name
//! or trusting another CA is refused, a plain client is closed, and bad key files stop the
//! server from starting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::{Client, ClientConfig, ClientError};
use feige_protocol::{pb, RequestKind};
use feige_server::{Config, Server, ServerError};
use feige_tests::sdk::{next_message, PASSWORD};
use feige_tests::tls::TestPki;
use feige_tests::{Raw, TestServer};

async fn tls_server(pki: &TestPki) -> TestServer {
    TestServer::start_with(|c| {
        pki.serve(c);
        c.dm_policy = feige_tests::DmPolicy::Anyone;
    })
    .await
}

fn port(s: &TestServer) -> u16 {
    s.handle.addr().port()
}

/// Register, login, send and receive, all through TLS, with the certificate verified against
/// the CA: once with the name taken from the address, once with an explicit name.
#[tokio::test]
async fn a_verifying_client_works_end_to_end() {
    let pki = TestPki::new();
    let s = tls_server(&pki).await;
    let by_host = pki.client(&format!("localhost:{}", port(&s)), "phone");
    let (alice, _) = Client::connect(by_host).await.unwrap();
    let alice_id = alice.register("alice", PASSWORD, "Alice").await.unwrap();
    let bob_id = alice.register("bob", PASSWORD, "Bob").await.unwrap();
    alice.login("alice", PASSWORD).await.unwrap();

    let by_name = ClientConfig {
        tls_server_name: Some("localhost".into()),
        ..pki.client(&s.addr(), "laptop")
    };
    let (bob, mut bob_events) = Client::connect(by_name).await.unwrap();
    bob.login("bob", PASSWORD).await.unwrap();

    let sent = alice.send_text(bob_id, "through TLS").await.unwrap();
    let got = next_message(&mut bob_events).await;
    assert_eq!(got.text, "through TLS");
    assert_eq!(got.from_user, alice_id);
    assert_eq!(got.message_id, sent.message_id);
    let history = bob
        .history(pb::History {
            peer_user: alice_id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    alice.close().await;
    bob.close().await;
    s.handle.shutdown().await;
}

fn tls_error(r: Result<(Client, feige_client::Events), ClientError>) -> String {
    match r {
        Err(ClientError::Tls(m)) => m,
        Err(e) => panic!("expected a TLS error, got {e:?}"),
        Ok(_) => panic!("expected a TLS error, got a connection"),
    }
}

/// The certificate is for `localhost`: a client that expects another name, or that trusts
/// another CA, is refused in the handshake with a TLS error, and the server serves on.
#[tokio::test]
async fn a_client_expecting_another_name_or_ca_is_refused() {
    let pki = TestPki::new();
    let s = tls_server(&pki).await;
    let other_name = ClientConfig {
        tls_server_name: Some("chat.example.com".into()),
        ..pki.client(&s.addr(), "d")
    };
    let msg = tls_error(Client::connect(other_name).await);
    assert!(msg.contains("chat.example.com"), "{msg}");
    assert!(msg.contains("not valid for name"), "{msg}");

    let stranger = TestPki::new();
    let other_ca = ClientConfig {
        ca_file: Some(stranger.ca.clone()),
        ..pki.client(&format!("localhost:{}", port(&s)), "d")
    };
    let msg = tls_error(Client::connect(other_ca).await);
    assert!(msg.contains("invalid peer certificate"), "{msg}");

    let no_ca = ClientConfig {
        ca_file: None,
        ..pki.client(&s.addr(), "d")
    };
    assert!(tls_error(Client::connect(no_ca).await).contains("CA file"));

    let (ok, _) = Client::connect(pki.client(&format!("localhost:{}", port(&s)), "d"))
        .await
        .unwrap();
    ok.ping().await.unwrap();
    ok.close().await;
    s.handle.shutdown().await;
}

/// A client speaking the plain protocol to a TLS listener gets its connection closed (the
/// handshake fails); the server is unharmed.
#[tokio::test]
async fn a_plain_client_against_a_tls_listener_is_closed() {
    let pki = TestPki::new();
    let s = tls_server(&pki).await;
    let mut raw = Raw::connect(&s.addr()).await;
    raw.send(RequestKind::Hello(pb::Hello {
        major: 1,
        ..Default::default()
    }))
    .await;
    assert!(raw.expect_closed().await.is_empty(), "no frame in clear");

    let plain = Client::connect(ClientConfig::new(s.addr())).await;
    assert!(plain.is_err(), "a plain SDK client cannot say Hello");

    let (ok, _) = Client::connect(pki.client(&format!("localhost:{}", port(&s)), "d"))
        .await
        .unwrap();
    ok.ping().await.unwrap();
    ok.close().await;
    s.handle.shutdown().await;
}

fn invalid_setting(r: Result<Server, ServerError>) -> String {
    match r {
        Err(ServerError::Config(e)) => e.to_string(),
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("the server started"),
    }
}

/// The key and certificate are checked at start: half a pair, a missing file, a key that is
/// not PEM, and a key of another certificate each stop the server with a message naming it.
#[tokio::test]
async fn bad_certificate_settings_stop_the_server() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let base = || Config {
        listen: ([127, 0, 0, 1], 0).into(),
        http_listen: None,
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let half = Config {
        tls_cert: Some(pki.cert.clone()),
        ..base()
    };
    assert!(invalid_setting(Server::bind(half).await).contains("tls_key"));
    let missing = Config {
        tls_cert: Some(pki.dir.path().join("nope.pem")),
        tls_key: Some(pki.key.clone()),
        ..base()
    };
    assert!(invalid_setting(Server::bind(missing).await).contains("nope.pem"));
    let not_a_key = Config {
        tls_cert: Some(pki.cert.clone()),
        tls_key: Some(pki.cert.clone()),
        ..base()
    };
    assert!(invalid_setting(Server::bind(not_a_key).await).contains("private key"));
    let mismatched = Config {
        tls_cert: Some(pki.cert.clone()),
        tls_key: Some(other.key.clone()),
        ..base()
    };
    assert!(invalid_setting(Server::bind(mismatched).await).contains("does not fit"));
}
