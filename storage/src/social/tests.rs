use rusqlite::{params, Connection};

use super::friends::befriend;
use super::*;
use crate::sequence::View;
use crate::StorageError;

fn db() -> Connection {
    let c = crate::schema::migrated_in_memory();
    for name in ["alice", "bob", "carol", "小明", "xiaoming_zhang"] {
        crate::account::insert_user(&c, name, &format!("{name} nick"), b"s", b"h").unwrap();
    }
    c
}

/// A rejection holds back the sender's next request to that user for the cool-down (not
/// the reverse direction); pruning deletes answered requests past the retention but keeps
/// a rejection still cooling down.
#[test]
fn rejection_cool_down_and_pruning() {
    const DAY: u64 = 86_400_000;
    let c = db();
    let RequestOutcome::Sent(r) = send_request(&c, 1, 2, "hi", DAY).unwrap() else {
        panic!("not sent")
    };
    respond_request(&c, 2, r.id, false).unwrap();
    match send_request(&c, 1, 2, "again", DAY) {
        Err(StorageError::CoolingDown { retry_after_ms }) => {
            assert!(retry_after_ms > DAY - 60_000 && retry_after_ms <= DAY)
        }
        other => panic!("not cooling down: {other:?}"),
    }
    assert!(matches!(
        send_request(&c, 2, 1, "", DAY),
        Ok(RequestOutcome::Sent(_))
    ));
    // Accepted and withdrawn requests, answered long ago; the rejection is recent.
    let RequestOutcome::Sent(a) = send_request(&c, 3, 1, "", DAY).unwrap() else {
        panic!("not sent")
    };
    respond_request(&c, 1, a.id, true).unwrap();
    c.execute(
        "UPDATE friend_requests SET answered_at_ms = answered_at_ms - ?1 WHERE id = ?2",
        params![40 * DAY as i64, a.id as i64],
    )
    .unwrap();
    let count = |c: &Connection| -> i64 {
        c.query_row("SELECT COUNT(*) FROM friend_requests", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&c), 3);
    assert_eq!(prune_requests(&c, 30 * DAY, DAY).unwrap(), 1, "the old one");
    assert_eq!(
        prune_requests(&c, 0, DAY).unwrap(),
        0,
        "the rejection cools down"
    );
    assert_eq!(count(&c), 2);
    c.execute_batch("UPDATE friend_requests SET answered_at_ms = answered_at_ms - 1000")
        .unwrap();
    assert_eq!(prune_requests(&c, 0, 0).unwrap(), 1);
    assert_eq!(count(&c), 1, "the pending request stays");
    assert!(matches!(
        send_request(&c, 1, 2, "", DAY),
        Ok(RequestOutcome::Accepted { .. })
    ));
}

#[test]
fn request_accept_and_mutual_request() {
    let c = db();
    let RequestOutcome::Sent(r) = send_request(&c, 1, 2, "hi", 0).unwrap() else {
        panic!("not sent")
    };
    assert!(matches!(
        send_request(&c, 1, 2, "again", 0),
        Err(StorageError::RequestPending)
    ));
    assert!(matches!(
        respond_request(&c, 1, r.id, true),
        Err(StorageError::UnknownRequest)
    ));
    let done = respond_request(&c, 2, r.id, true).unwrap();
    assert!(done.accepted);
    assert_eq!(done.friend.unwrap().user.id, 1);
    assert!(is_friend(&c, 1, 2).unwrap() && is_friend(&c, 2, 1).unwrap());
    assert!(matches!(
        send_request(&c, 2, 1, "", 0),
        Err(StorageError::AlreadyFriends)
    ));
    // Mutual: carol asks alice, then alice asks carol -> friends.
    send_request(&c, 3, 1, "", 0).unwrap();
    let out = send_request(&c, 1, 3, "", 0).unwrap();
    assert!(matches!(out, RequestOutcome::Accepted { .. }));
    assert_eq!(friend_ids(&c, 1).unwrap().len(), 2);
    let f = friends(&c, 1).unwrap();
    assert!(f.iter().all(|f| f.conversation_id != 0));
}

#[test]
fn blocks_withdraw_and_refuse() {
    let c = db();
    send_request(&c, 2, 1, "", 0).unwrap();
    let (blocked, were_friends) = block(&c, 1, 2).unwrap();
    assert_eq!((blocked.id, were_friends), (2, false));
    assert!(friend_requests(&c, 1).unwrap().0.is_empty());
    assert!(matches!(
        send_request(&c, 2, 1, "", 0),
        Err(StorageError::BlockedByPeer)
    ));
    assert!(matches!(
        send_request(&c, 1, 2, "", 0),
        Err(StorageError::PeerBlocked)
    ));
    let mut gate = Gate::new(DirectPolicy::Anyone);
    assert!(matches!(
        gate.check(&c, 2, 1),
        Err(StorageError::BlockedByPeer)
    ));
    assert!(gate.check(&c, 2, 3).is_ok());
    assert_eq!(unblock(&c, 1, 2).unwrap().username, "bob");
    assert!(matches!(unblock(&c, 1, 2), Err(StorageError::NotBlocked)));
    // The writer clears the gate after every graph job.
    assert!(matches!(
        gate.check(&c, 2, 1),
        Err(StorageError::BlockedByPeer)
    ));
    gate.clear();
    assert!(gate.check(&c, 2, 1).is_ok());
    block(&c, 2, 1).unwrap();
    gate.clear();
    assert!(matches!(
        gate.check(&c, 1, 2),
        Err(StorageError::BlockedByPeer)
    ));
    assert!(matches!(
        gate.check(&c, 2, 1),
        Err(StorageError::PeerBlocked)
    ));
    unblock(&c, 2, 1).unwrap();
    gate.clear();
    let mut strict = Gate::new(DirectPolicy::FriendsOnly);
    assert!(matches!(
        strict.check(&c, 2, 1),
        Err(StorageError::NotFriends)
    ));
    assert!(matches!(
        strict.check(&c, 2, 99),
        Err(StorageError::UnknownUser)
    ));
}

#[test]
fn conversation_pages_follow_the_cursor() {
    let c = db();
    for (a, b) in [(1, 2), (1, 3), (1, 4)] {
        befriend(&c, a, b, 1_000).unwrap();
    }
    let recent = crate::recent::Recent::new(0);
    let view = View {
        recent: &recent,
        snap: crate::recent::Snapshot::read(&c).unwrap(),
    };
    let all = |page| conversations(&c, &view, 1, page).unwrap();
    let (full, more) = all(ConversationPage::default());
    assert!(!more);
    assert_eq!(full.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1]);
    let (p1, more) = all(ConversationPage {
        limit: 2,
        before: None,
    });
    assert!(more);
    assert_eq!(p1.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2]);
    let last = &p1[1];
    let (p2, more) = all(ConversationPage {
        limit: 2,
        before: Some((last.last_active_ms, last.id)),
    });
    assert!(!more);
    assert_eq!(p2.iter().map(|r| r.id).collect::<Vec<_>>(), [1]);
    let (none, _) = all(ConversationPage {
        limit: 0,
        before: Some((1_000, 0)),
    });
    assert!(none.is_empty());
}

#[test]
fn search_folds_case_beyond_ascii() {
    let c = db();
    crate::account::insert_user(&c, "anne", "änne", b"s", b"h").unwrap();
    crate::account::insert_user(&c, "odos", "ΟΔΟΣ", b"s", b"h").unwrap();
    let (found, _) = search_users(&c, 1, "ÄNNE", 10, 0).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].nickname, "änne");
    assert_eq!(search_users(&c, 1, "οδος", 10, 0).unwrap().0.len(), 1);
    let (before, after) = update_profile(
        &c,
        1,
        &ProfileUpdate {
            nickname: Some("ÉCOLE".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (before.nickname.as_str(), after.nickname.as_str()),
        ("alice nick", "ÉCOLE")
    );
    assert_eq!(search_users(&c, 2, "école", 10, 0).unwrap().0[0].id, 1);
}

#[test]
fn search_keys_are_nfkc_normalized() {
    // Full-width letters and digits (CJK input methods), decomposed accents, ligatures.
    assert_eq!(search_key("ＷＡＮＧ　Ｌｅｉ１２３"), "wang lei123");
    assert_eq!(search_key("E\u{301}COLE"), "école");
    assert_eq!(search_key("ﬁsh"), "fish");
    assert_eq!(search_key("王磊"), "王磊");
    let c = db();
    crate::account::insert_user(&c, "wanglei", "ＷａｎｇＬｅｉ", b"s", b"h").unwrap();
    crate::account::insert_user(&c, "cafe", "Cafe\u{301}", b"s", b"h").unwrap();
    let ids = |q: &str| -> Vec<u64> {
        let (found, _) = search_users(&c, 1, q, 10, 0).unwrap();
        found.iter().map(|u| u.id).collect()
    };
    assert_eq!(ids("wanglei"), ids("ＷＡＮＧ"));
    assert_eq!(ids("wanglei").len(), 1);
    assert_eq!(ids("café").len(), 1, "composed query, decomposed name");
}

#[test]
fn search_ranks_and_escapes() {
    let c = db();
    let (found, more) = search_users(&c, 1, "xiao", 10, 0).unwrap();
    assert!(!more);
    assert_eq!(found.len(), 1);
    let (found, _) = search_users(&c, 1, "小", 10, 0).unwrap();
    assert_eq!(found[0].username, "小明");
    let (found, _) = search_users(&c, 1, "ALI", 10, 0).unwrap();
    assert_eq!(found[0].username, "alice");
    // "o" is in bob, carol, xiaoming_zhang: paged.
    let (p1, more) = search_users(&c, 1, "o", 2, 0).unwrap();
    assert!(more);
    let (p2, more) = search_users(&c, 1, "o", 2, 2).unwrap();
    assert!(!more);
    assert_eq!(p1.len() + p2.len(), 3);
    assert!(search_users(&c, 1, "%", 10, 0).unwrap().0.is_empty());
    assert_eq!(search_users(&c, 1, "_", 10, 0).unwrap().0.len(), 1);
    block(&c, 2, 1).unwrap();
    assert!(search_users(&c, 1, "bob", 10, 0).unwrap().0.is_empty());
}
