//! Friend suggestions: friends of friends and fellow group members.

use rusqlite::{params, Connection};

use crate::int::{get_u64, Uint};
use crate::social::{public_user, PublicUser};
use crate::{StorageError, UserId};

/// Someone `user` may know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// Who.
    pub user: PublicUser,
    /// Friends of both.
    pub mutual_friends: u32,
    /// Groups (not dismissed) both are members of.
    pub mutual_groups: u32,
}

/// Up to `limit` people who share friends or groups with `user`, most shared first (then by
/// id); never `user`, their friends, or anyone either of them has blocked.
///
/// # Errors
/// Database errors.
pub fn suggestions(
    c: &Connection,
    user: UserId,
    limit: usize,
) -> Result<Vec<Suggestion>, StorageError> {
    let mut st = c.prepare_cached(
        "WITH cand(id, f, g) AS (
             SELECT f2.friend_id, 1, 0 FROM friends f1
             JOIN friends f2 ON f2.user_id = f1.friend_id
             WHERE f1.user_id = ?1
             UNION ALL
             SELECT m2.user_id, 0, 1 FROM members m1
             JOIN groups g ON g.conversation_id = m1.conversation_id AND g.dismissed_at_ms IS NULL
             JOIN members m2 ON m2.conversation_id = m1.conversation_id
             WHERE m1.user_id = ?1)
         SELECT id, SUM(f), SUM(g) FROM cand
         WHERE id <> ?1
           AND NOT EXISTS (SELECT 1 FROM friends x WHERE x.user_id = ?1 AND x.friend_id = cand.id)
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = ?1 AND b.blocked_id = cand.id)
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = cand.id AND b.blocked_id = ?1)
         GROUP BY id
         ORDER BY SUM(f) + SUM(g) DESC, SUM(f) DESC, id
         LIMIT ?2",
    )?;
    let rows: Vec<(u64, u32, u32)> = st
        .query_map(params![Uint(user), Uint::from_usize(limit)], |r| {
            Ok((get_u64(r, 0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, mutual_friends, mutual_groups) in rows {
        if let Some(user) = public_user(c, id)? {
            out.push(Suggestion {
                user,
                mutual_friends,
                mutual_groups,
            });
        }
    }
    Ok(out)
}
