use rusqlite::Connection;

use super::*;
use crate::writer::Members;

/// Users 1..=4; a direct conversation 10 of 1 and 2, and a group 20 of 1, 2 and 3.
fn db() -> Connection {
    let mut c = Connection::open_in_memory().unwrap();
    crate::schema::migrate(&mut c).unwrap();
    c.execute_batch(
        "INSERT INTO users(id, username, password_hash, salt, nickname, created_at_ms)
             VALUES (1, 'a', x'00', x'00', 'a', 0), (2, 'b', x'00', x'00', 'b', 0),
                    (3, 'c', x'00', x'00', 'c', 0), (4, 'd', x'00', x'00', 'd', 0);
         INSERT INTO conversations(id, kind, user_a, user_b, created_at_ms) VALUES (10, 1, 1, 2, 0);
         INSERT INTO conversations(id, kind, created_at_ms) VALUES (20, 2, 0);
         INSERT INTO members(user_id, conversation_id, joined_at_ms) VALUES (1, 20, 0), (2, 20, 0), (3, 20, 0);",
    )
    .unwrap();
    c
}

fn send(
    c: &Connection,
    id: u64,
    conv: u64,
    total: u64,
    count: u32,
    mode: Mode,
) -> Result<(), StorageError> {
    let members = Members::Pair([1, 2]);
    let attach = attachment(NewPacket {
        total_cents: total,
        count,
        mode,
        greeting: "恭喜发财".into(),
        expires_in_ms: 1000,
        initial_cents: 1000,
    });
    attach(
        c,
        &Attached {
            message_id: id,
            conversation_id: conv,
            sender: 1,
            members: &members,
            now_ms: 0,
        },
    )
}

fn invariants(c: &Connection) {
    assert_eq!(
        wallet::ledger_total(c).unwrap().0,
        0,
        "the ledger sums to zero"
    );
    for u in 1..=4 {
        assert_eq!(
            wallet::ledger_sum(c, Account::User(u)).unwrap(),
            wallet::balance(c, u, 0).unwrap()
        );
    }
}

#[test]
fn grabs_take_every_cent_once_and_refuse_the_rest() {
    let c = db();
    send(&c, 100, 20, 300, 2, Mode::Random).unwrap();
    assert_eq!(wallet::balance(&c, 1, 0).unwrap(), 700);
    let mut got = 0;
    for user in [2, 3] {
        match grab(&c, user, 100, |n| n / 2, 1000, 10).unwrap() {
            GrabOutcome::Grabbed { grab, packet } => {
                assert_eq!(grab.user_id, user);
                got += grab.amount_cents;
                assert_eq!(packet.remaining_cents, 300 - got);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, 300);
    assert!(matches!(
        grab(&c, 2, 100, |_| 0, 1000, 10),
        Err(StorageError::AlreadyGrabbed)
    ));
    assert!(matches!(
        grab(&c, 1, 100, |_| 0, 1000, 10),
        Err(StorageError::RedPacketEmpty)
    ));
    // Empty, and expired: still empty.
    assert!(matches!(
        grab(&c, 1, 100, |_| 0, 1000, 5000),
        Err(StorageError::RedPacketEmpty)
    ));
    assert!(matches!(
        grab(&c, 4, 100, |_| 0, 1000, 10),
        Err(StorageError::Forbidden)
    ));
    assert!(matches!(
        grab(&c, 2, 999, |_| 0, 1000, 10),
        Err(StorageError::UnknownRedPacket)
    ));
    let p = info(&c, 3, 100).unwrap();
    assert_eq!(p.grabs.iter().map(|g| g.amount_cents).sum::<u64>(), 300);
    assert_eq!((p.remaining_count, p.remaining_cents), (0, 0));
    assert!(matches!(info(&c, 4, 100), Err(StorageError::Forbidden)));
    // Settled when empty: nothing to refund.
    assert_eq!(refund_expired(&c, 5000, 10).unwrap(), 0);
    invariants(&c);
}

#[test]
fn an_overdraft_is_refused_and_the_sender_cannot_grab_a_direct_packet() {
    let c = db();
    assert!(matches!(
        send(&c, 100, 10, 1001, 1, Mode::Equal),
        Err(StorageError::InsufficientFunds {
            balance_cents: 1000
        })
    ));
    send(&c, 101, 10, 1000, 1, Mode::Equal).unwrap();
    assert!(matches!(
        grab(&c, 1, 101, |_| 0, 1000, 10),
        Err(StorageError::Forbidden)
    ));
    assert!(matches!(
        grab(&c, 2, 101, |_| 0, 1000, 10).unwrap(),
        GrabOutcome::Grabbed {
            grab: GrabRecord {
                amount_cents: 1000,
                ..
            },
            ..
        }
    ));
    invariants(&c);
}

#[test]
fn the_rest_of_an_expired_packet_goes_back_once() {
    let c = db();
    send(&c, 100, 20, 90, 3, Mode::Equal).unwrap();
    assert!(matches!(
        grab(&c, 2, 100, |_| 0, 0, 10).unwrap(),
        GrabOutcome::Grabbed { .. }
    ));
    assert_eq!(expired(&c, 999, 10).unwrap(), Vec::<u64>::new());
    assert_eq!(expired(&c, 1000, 10).unwrap(), vec![100]);
    // A grab after the expiry refunds (and commits: it is not an error).
    assert!(matches!(
        grab(&c, 3, 100, |_| 0, 0, 1000).unwrap(),
        GrabOutcome::Expired { refunded_cents: 60 }
    ));
    assert_eq!(refund_expired(&c, 2000, 10).unwrap(), 0, "already settled");
    assert!(matches!(
        grab(&c, 3, 100, |_| 0, 0, 2000).unwrap(),
        GrabOutcome::Expired { refunded_cents: 0 }
    ));
    assert_eq!(wallet::balance(&c, 1, 0).unwrap(), 1000 - 30);
    let p = info(&c, 1, 100).unwrap();
    assert_eq!(
        (p.refunded_cents, p.remaining_cents, p.remaining_count),
        (60, 0, 2)
    );
    // The upkeep's path.
    send(&c, 101, 20, 50, 5, Mode::Random).unwrap();
    assert_eq!(refund_expired(&c, 1000, 10).unwrap(), 1);
    assert_eq!(wallet::balance(&c, 1, 0).unwrap(), 970);
    invariants(&c);
}
