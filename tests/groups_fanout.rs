//! A group of 1,000 online members through the Rust client SDK: each gets every message once,
//! in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::Events;
use feige_protocol::pb;
use feige_tests::sdk::{login, messages, next_message, no_message_within, register};
use feige_tests::TestServer;

/// The next message event that is a system notice; panics on an ordinary message.
async fn notice(ev: &mut Events) -> pb::Message {
    let m = next_message(ev).await;
    assert_eq!(
        m.kind,
        pb::MessageKind::System as i32,
        "expected a system notice, got {m:?}"
    );
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_members_online_each_get_every_message_once_in_order() {
    const N: usize = 1000;
    const MESSAGES: usize = 3;
    let s = TestServer::start().await;
    let addr = s.addr();
    let owner_id = register(&addr, "owner").await;
    let (owner, mut owner_ev) = login(&addr, "owner", "o").await;
    let tokens = {
        let db = rusqlite::Connection::open(s.dir.path().join("feige.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        let tx = db.unchecked_transaction().unwrap();
        let mut tokens = Vec::with_capacity(N);
        for i in 0..N {
            let name = format!("member{i}");
            tx.execute(
                "INSERT INTO users(username, nickname, salt, password_hash, created_at_ms)
                 VALUES (?1, ?1, x'00', x'00', 0)",
                [&name],
            )
            .unwrap();
            let id = tx.last_insert_rowid();
            for (x, y) in [(owner_id as i64, id), (id, owner_id as i64)] {
                tx.execute(
                    "INSERT INTO friends(user_id, friend_id, since_ms) VALUES (?1, ?2, 0)",
                    [x, y],
                )
                .unwrap();
            }
            let token = format!("token-of-member-{i:04}-padding-32b").into_bytes();
            tx.execute(
                "INSERT INTO sessions(token_hash, user_id, device, created_at_ms, last_seen_ms,
                                      expires_at_ms)
                 VALUES (?1, ?2, 'bench', 0, 0, 9000000000000)",
                rusqlite::params![feige_server::account::token_hash(&token), id],
            )
            .unwrap();
            tokens.push((id as u64, token));
        }
        tx.commit().unwrap();
        tokens
    };
    let started = std::time::Instant::now();
    let mut members = Vec::with_capacity(N);
    for chunk in tokens.chunks(100) {
        let logins = chunk.iter().cloned().map(|(id, token)| {
            let addr = addr.clone();
            async move {
                let (c, ev) = feige_tests::sdk::connect(&addr, "bench").await;
                c.resume(&token).await.unwrap();
                (id, c, ev)
            }
        });
        members.extend(futures_join(logins).await);
    }
    let ids: Vec<u64> = tokens.iter().map(|t| t.0).collect();
    let g = owner.group_create("Everyone", &ids, false).await.unwrap();
    assert_eq!(g.member_count as usize, N + 1);
    for i in 0..MESSAGES {
        owner
            .send_group_text(g.group_id, &format!("m{i}"), &[], false)
            .await
            .unwrap();
    }
    // A notice names the first ten users only.
    let n = notice(&mut owner_ev).await;
    assert!(n.text.ends_with(", member9 and 990 others"), "{}", n.text);
    // Each member: the notice (seq 1), then the messages, each once, in order.
    let checks = members.into_iter().map(|(_, c, mut ev)| async move {
        let got = messages(&mut ev, MESSAGES + 1).await;
        let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=(MESSAGES as u64 + 1)).collect::<Vec<_>>());
        assert_eq!(got[1].text, "m0");
        (c, ev)
    });
    let mut done = futures_join(checks).await;
    // And nothing more (a duplicate would follow the last one).
    for (_, ev) in done.iter_mut().take(20) {
        no_message_within(ev, 50).await;
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// Runs the futures concurrently on the test's runtime and returns their outputs in order.
async fn futures_join<F: std::future::Future + Send + 'static>(
    fs: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
