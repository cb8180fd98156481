#![allow(clippy::unwrap_used)]

use rusqlite::Connection;

use super::records::{joined_seq, role_of};
use super::*;
use crate::StorageError;

fn db() -> Connection {
    let c = crate::schema::migrated_in_memory();
    for name in ["alice", "bob", "carol", "dave"] {
        c.execute(
            "INSERT INTO users(username, nickname, salt, password_hash, created_at_ms)
             VALUES (?1, ?1, x'', x'', 0)",
            [name],
        )
        .unwrap();
    }
    // alice is friends with bob and carol; bob with dave.
    for (a, b) in [(1, 2), (1, 3), (2, 4)] {
        for (x, y) in [(a, b), (b, a)] {
            c.execute(
                "INSERT INTO friends(user_id, friend_id, since_ms) VALUES (?1, ?2, 0)",
                [x, y],
            )
            .unwrap();
        }
    }
    c
}

fn new_group(c: &Connection, approval: bool) -> u64 {
    let g = NewGroup {
        name: "g".into(),
        members: vec![2, 2, 1],
        join_approval: approval,
        max_members: 3,
    };
    let ch = create(c, 1, &g, 5).unwrap();
    assert_eq!(
        ch.notice.as_deref(),
        Some("alice created the group \"g\" and added bob")
    );
    assert_eq!(ch.value.member_count, 2);
    assert_eq!(ch.value.my_role, Role::Owner);
    ch.group
}

#[test]
fn roles_rule_changes() {
    let c = db();
    let g = new_group(&c, false);
    // Only friends of the inviter; members are skipped.
    assert!(matches!(
        invite(&c, 1, g, &[4], 3, 1, 6),
        Err(StorageError::NotAFriend)
    ));
    let ch = invite(&c, 1, g, &[3, 2], 3, 1, 6).unwrap();
    assert_eq!(ch.value.added, vec![3]);
    assert_eq!(joined_seq(&c, g, 3).unwrap(), Some(1));
    // Full at 3.
    assert!(matches!(
        invite(&c, 2, g, &[4], 3, 2, 6),
        Err(StorageError::GroupFull(3))
    ));
    // A plain member removes nobody; the owner cannot leave.
    assert!(matches!(
        remove(&c, 2, g, 3),
        Err(StorageError::NotAllowed(_))
    ));
    assert!(matches!(leave(&c, 1, g), Err(StorageError::NotAllowed(_))));
    set_role(&c, 1, g, 2, Role::Admin).unwrap();
    // An admin removes members, not the owner.
    assert!(matches!(
        remove(&c, 2, g, 1),
        Err(StorageError::NotAllowed(_))
    ));
    let ch = remove(&c, 2, g, 3).unwrap();
    assert_eq!(ch.departed, vec![3]);
    assert_eq!(role_of(&c, g, 3).unwrap(), None);
    transfer(&c, 1, g, 2).unwrap();
    assert_eq!(group_info(&c, 1, g).unwrap().owner, 2);
    assert_eq!(role_of(&c, g, 1).unwrap(), Some(Role::Member));
    let ch = dismiss(&c, 2, g, 9).unwrap();
    assert_eq!(ch.departed, vec![1, 2]);
    assert!(matches!(
        group_info(&c, 1, g),
        Err(StorageError::UnknownConversation)
    ));
}

#[test]
fn approval_keeps_invitations_pending() {
    let c = db();
    let g = new_group(&c, true);
    // bob (a plain member) invites dave: pending until alice approves.
    let ch = invite(&c, 2, g, &[4], 3, 1, 6).unwrap();
    assert_eq!(ch.value.pending, vec![4]);
    assert!(ch.notice.is_none());
    assert_eq!(invites(&c, 1).unwrap().len(), 1);
    assert_eq!(invites(&c, 4).unwrap().len(), 1);
    assert!(invites(&c, 2).unwrap().is_empty());
    assert!(matches!(
        answer_invite(&c, 2, g, 4, true, 3, 1, 7),
        Err(StorageError::NotAllowed(_))
    ));
    let ch = answer_invite(&c, 1, g, 4, true, 3, 1, 7).unwrap();
    assert!(ch.value);
    assert_eq!(role_of(&c, g, 4).unwrap(), Some(Role::Member));
    assert!(invites(&c, 1).unwrap().is_empty());
    let (page, more) = members(&c, 4, g, MemberPage { after: 0, limit: 2 }).unwrap();
    assert_eq!(
        page.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(more);
}
