use rusqlite::Connection;

use super::*;
use crate::StorageError;

/// Users 1..=6. Friendships: 1-2, 1-3, 2-4, 3-4, 2-5, 1-6's... see each test.
fn db(friendships: &[(i64, i64)]) -> Connection {
    let c = crate::schema::migrated_in_memory();
    for name in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        crate::account::insert_user(&c, name, name, b"s", b"h").unwrap();
    }
    for (a, b) in friendships {
        c.execute(
            "INSERT INTO friends(user_id, friend_id, since_ms) VALUES (?1, ?2, 0), (?2, ?1, 0)",
            [a, b],
        )
        .unwrap();
    }
    c
}

#[test]
fn friends_are_listed_by_group() {
    let c = db(&[(1, 2), (1, 3), (1, 4), (2, 3)]);
    let f = set_friend_group(&c, 1, 3, "家人").unwrap();
    assert_eq!((f.user.id, f.group.as_str()), (3, "家人"));
    set_friend_group(&c, 1, 4, "work").unwrap();
    set_friend_group(&c, 1, 2, "work").unwrap();
    // Only the owner's side is grouped.
    assert_eq!(crate::social::friend(&c, 3, 1).unwrap().unwrap().group, "");
    let groups = friend_groups(&c, 1).unwrap();
    let names: Vec<(&str, Vec<u64>)> = groups
        .iter()
        .map(|g| {
            (
                g.name.as_str(),
                g.friends.iter().map(|f| f.user.id).collect(),
            )
        })
        .collect();
    assert_eq!(names, [("work", vec![2, 4]), ("家人", vec![3])]);
    // Back to the default group, listed first.
    set_friend_group(&c, 1, 4, "").unwrap();
    assert_eq!(friend_groups(&c, 1).unwrap()[0].name, "");
    assert!(matches!(
        set_friend_group(&c, 1, 5, "x"),
        Err(StorageError::NotAFriend)
    ));
}

#[test]
fn suggestions_count_mutual_friends_and_groups() {
    // 1's friends: 2, 3. Friends of friends: 4 (via 2 and 3), 5 (via 2), 1 itself.
    let c = db(&[(1, 2), (1, 3), (2, 4), (3, 4), (2, 5)]);
    // Group 10: 1, 5, 6; group 11 (dismissed): 1, 6.
    c.execute_batch(
        "INSERT INTO conversations(id, kind, created_at_ms) VALUES (10, 2, 0), (11, 2, 0);
         INSERT INTO groups(conversation_id, name, owner_id, created_at_ms, dismissed_at_ms)
             VALUES (10, 'a', 1, 0, NULL), (11, 'b', 1, 0, 5);
         INSERT INTO members(user_id, conversation_id, joined_at_ms)
             VALUES (1, 10, 0), (5, 10, 0), (6, 10, 0), (1, 11, 0), (6, 11, 0);",
    )
    .unwrap();
    let got = |c: &Connection, limit| -> Vec<(u64, u32, u32)> {
        suggestions(c, 1, limit)
            .unwrap()
            .iter()
            .map(|s| (s.user.id, s.mutual_friends, s.mutual_groups))
            .collect()
    };
    assert_eq!(got(&c, 20), [(4, 2, 0), (5, 1, 1), (6, 0, 1)]);
    assert_eq!(got(&c, 1), [(4, 2, 0)]);
    // Blocks either way take a user out; so does becoming a friend.
    c.execute_batch(
        "INSERT INTO blocks(user_id, blocked_id, since_ms) VALUES (1, 4, 0), (6, 1, 0);
         INSERT INTO friends(user_id, friend_id, since_ms) VALUES (1, 5, 0), (5, 1, 0);",
    )
    .unwrap();
    assert!(got(&c, 20).is_empty());
}
