//! The direct-pair index: which 1:1 conversation two users share, and each user's 1:1
//! conversations.
//!
//! A pair index on `conversations` would cost random-keyed B-tree inserts per new pair, each a
//! page written to the WAL once the index outgrows a commit. So `conversations` keeps no pair
//! index; `direct_pairs` holds both
//! directions of every direct conversation up to the mark `meta.pairs_indexed_upto`, and the
//! writer adds the conversations above the mark (the tail) to it in bulk ([`index_pairs`]):
//! sorted, many thousands at a time, so each page it dirties takes many pairs. Readers find
//! the tail by a rowid range scan of `conversations` from the mark (the `direct_tail` view,
//! which `memberships` includes). The mark moves in the same transaction as the pairs, so the
//! two halves never overlap or leave a gap.

use rusqlite::{params, Connection, OptionalExtension};

use crate::int::{get_u64, last_id, Uint};
use crate::{ConversationId, StorageError, UserId};

/// A direct pair in the tail: (lower user id, higher user id) and its conversation.
pub(crate) type TailPair = ((UserId, UserId), ConversationId);

/// The 1:1 conversation of `a` and `b`, if any: the index, then the tail.
///
/// # Errors
/// Database errors.
pub(crate) fn direct_conversation(
    c: &Connection,
    a: UserId,
    b: UserId,
) -> Result<Option<ConversationId>, StorageError> {
    if let Some(id) = indexed(c, a, b)? {
        return Ok(Some(id));
    }
    conversation_of(
        c,
        "SELECT conversation_id FROM direct_tail WHERE user_a = ?1 AND user_b = ?2",
        a.min(b),
        a.max(b),
    )
}

/// The pair's conversation if it is in the index (at or below the mark).
pub(crate) fn indexed(
    c: &Connection,
    a: UserId,
    b: UserId,
) -> Result<Option<ConversationId>, StorageError> {
    conversation_of(
        c,
        "SELECT conversation_id FROM direct_pairs WHERE user_id = ?1 AND peer_id = ?2",
        a,
        b,
    )
}

/// Runs a query for one conversation id of the users `a` (`?1`) and `b` (`?2`).
fn conversation_of(
    c: &Connection,
    sql: &str,
    a: UserId,
    b: UserId,
) -> Result<Option<ConversationId>, StorageError> {
    Ok(c.prepare_cached(sql)?
        .query_row(params![Uint(a), Uint(b)], |r| get_u64(r, 0))
        .optional()?)
}

/// Creates the 1:1 conversation of `a` and `b`, which the caller has found missing.
pub(crate) fn insert(
    c: &Connection,
    a: UserId,
    b: UserId,
    now: i64,
) -> Result<ConversationId, StorageError> {
    c.prepare_cached(
        "INSERT INTO conversations(kind, user_a, user_b, created_at_ms) VALUES (1, ?1, ?2, ?3)",
    )?
    .execute(params![Uint(a.min(b)), Uint(a.max(b)), now])?;
    Ok(last_id(c)?)
}

/// The 1:1 conversation of `a` and `b`, created if missing; true when it was created. For
/// jobs that open a conversation now and then (a friend request); the writer's message path
/// keeps the tail in memory instead of scanning it.
///
/// # Errors
/// Database errors.
pub(crate) fn ensure_direct(
    c: &Connection,
    a: UserId,
    b: UserId,
    now: i64,
) -> Result<(ConversationId, bool), StorageError> {
    match direct_conversation(c, a, b)? {
        Some(id) => Ok((id, false)),
        None => Ok((insert(c, a, b, now)?, true)),
    }
}

/// The index's mark: every direct conversation with an id at or below it is in
/// `direct_pairs`.
pub(crate) fn mark(c: &Connection) -> Result<ConversationId, StorageError> {
    let v = c
        .prepare_cached("SELECT value FROM meta WHERE key = 'pairs_indexed_upto'")?
        .query_row([], |r| get_u64(r, 0))
        .optional()?;
    Ok(v.unwrap_or(0))
}

/// The direct conversations with an id above `after`, oldest first.
pub(crate) fn tail_after(
    c: &Connection,
    after: ConversationId,
) -> Result<Vec<TailPair>, StorageError> {
    let mut st = c.prepare_cached(
        "SELECT id, user_a, user_b FROM conversations WHERE id > ?1 AND kind = 1 ORDER BY id",
    )?;
    let rows = st.query_map([Uint(after)], |r| {
        Ok(((get_u64(r, 1)?, get_u64(r, 2)?), get_u64(r, 0)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest conversation id (any kind), 0 when there is none.
pub(crate) fn newest(c: &Connection) -> Result<ConversationId, StorageError> {
    Ok(
        c.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM conversations")?
            .query_row([], |r| get_u64(r, 0))?,
    )
}

/// Moves the tail into the index: both directions of every pair in `tail` (the writer's copy,
/// every direct conversation above the mark, or [`tail_after`] the mark), sorted in memory
/// ([`crate::db::move_rows`]), and raises the mark to the newest
/// conversation, in its own transaction (the caller must not be in one), so each index page
/// written takes many pairs. Returns the new mark.
///
/// The writer moves in slices instead (its pairs module); tests build the index with this.
///
/// # Errors
/// Database errors; nothing of the move is then in the index.
#[cfg(test)]
pub(crate) fn index_pairs<S>(
    c: &Connection,
    tail: &std::collections::HashMap<(UserId, UserId), ConversationId, S>,
) -> Result<ConversationId, StorageError> {
    let upto = newest(c)?;
    let mut rows: Vec<(u64, u64, u64)> = Vec::with_capacity(tail.len() * 2);
    for (&(a, b), &id) in tail {
        rows.push((a, b, id));
        rows.push((b, a, id));
    }
    rows.sort_unstable();
    crate::db::in_transaction(c, |c| {
        crate::db::move_rows(c, "direct_pairs(user_id, peer_id, conversation_id)", &rows)?;
        c.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'pairs_indexed_upto'")?
            .execute([Uint(upto)])?;
        Ok(upto)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn store() -> Connection {
        let c = crate::schema::migrated_in_memory();
        c.execute_batch(
            "INSERT INTO users(id, username, nickname, salt, password_hash, created_at_ms)
             VALUES (1, 'a', 'a', x'00', x'00', 0), (2, 'b', 'b', x'00', x'00', 0),
                    (3, 'c', 'c', x'00', x'00', 0);",
        )
        .unwrap();
        c
    }

    /// Moves the database's tail into the index, as the writer does with its copy.
    fn move_tail(c: &Connection) -> ConversationId {
        let tail: HashMap<_, _> = tail_after(c, mark(c).unwrap())
            .unwrap()
            .into_iter()
            .collect();
        index_pairs(c, &tail).unwrap()
    }

    fn memberships(c: &Connection, user: UserId) -> Vec<u64> {
        c.prepare(
            "SELECT conversation_id FROM memberships WHERE user_id = ?1 ORDER BY conversation_id",
        )
        .unwrap()
        .query_map([user as i64], |r| r.get::<_, i64>(0).map(|v| v as u64))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn pairs_are_found_in_the_tail_and_after_indexing_alike() {
        let c = store();
        let (ab, made) = ensure_direct(&c, 2, 1, 0).unwrap();
        assert!(made);
        let (bc, _) = ensure_direct(&c, 2, 3, 0).unwrap();
        assert_eq!(
            ensure_direct(&c, 1, 2, 0).unwrap(),
            (ab, false),
            "found in the tail"
        );
        assert_eq!(indexed(&c, 1, 2).unwrap(), None);
        assert_eq!(tail_after(&c, 0).unwrap(), vec![((1, 2), ab), ((2, 3), bc)]);
        assert_eq!(memberships(&c, 2), vec![ab, bc]);

        assert_eq!(move_tail(&c), bc);
        assert_eq!(mark(&c).unwrap(), bc);
        assert!(tail_after(&c, mark(&c).unwrap()).unwrap().is_empty());
        // Both directions are indexed, and each membership is listed once.
        assert_eq!(indexed(&c, 2, 1).unwrap(), Some(ab));
        assert_eq!(indexed(&c, 3, 2).unwrap(), Some(bc));
        assert_eq!(ensure_direct(&c, 2, 1, 0).unwrap(), (ab, false));
        assert_eq!(memberships(&c, 2), vec![ab, bc]);
        assert_eq!(memberships(&c, 3), vec![bc]);
        let all = |view: &str| -> Vec<(i64, i64)> {
            c.prepare(&format!(
                "SELECT user_id, conversation_id FROM {view} ORDER BY 1, 2"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        assert_eq!(
            all("conversation_members"),
            all("memberships"),
            "the two views hold the same rows"
        );

        // A new pair after the mark is in the tail again; indexing an empty tail is harmless.
        let (ac, _) = ensure_direct(&c, 3, 1, 0).unwrap();
        assert_eq!(memberships(&c, 1), vec![ab, ac]);
        assert_eq!(direct_conversation(&c, 1, 3).unwrap(), Some(ac));
        move_tail(&c);
        move_tail(&c);
        assert_eq!(memberships(&c, 1), vec![ab, ac]);
        assert_eq!(direct_conversation(&c, 3, 1).unwrap(), Some(ac));
    }

    #[test]
    fn the_writers_copy_of_the_tail_indexes_like_the_database_tail() {
        let c = store();
        let (ab, _) = ensure_direct(&c, 2, 1, 0).unwrap();
        let (bc, _) = ensure_direct(&c, 3, 2, 0).unwrap();
        let tail: HashMap<_, _> = tail_after(&c, mark(&c).unwrap())
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(index_pairs(&c, &tail).unwrap(), bc);
        assert!(tail_after(&c, mark(&c).unwrap()).unwrap().is_empty());
        assert_eq!(
            (indexed(&c, 1, 2).unwrap(), indexed(&c, 2, 1).unwrap()),
            (Some(ab), Some(ab))
        );
        assert_eq!(indexed(&c, 2, 3).unwrap(), Some(bc));
        assert_eq!(memberships(&c, 2), vec![ab, bc]);
    }

    /// Readers filter the views by user; the plans must seek, not scan the tables.
    #[test]
    fn membership_lookups_use_the_index_and_the_tail_range() {
        let c = store();
        let plan = |sql: &str| -> String {
            c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join("\n")
        };
        let by_user = plan("SELECT conversation_id FROM memberships WHERE user_id = 1");
        assert!(!by_user.contains("SCAN direct_pairs"), "{by_user}");
        assert!(!by_user.contains("SCAN conversations"), "{by_user}");
        assert!(by_user.contains("rowid>?"), "{by_user}");
        let pair = plan("SELECT conversation_id FROM direct_tail WHERE user_a = 1 AND user_b = 2");
        assert!(pair.contains("rowid>?"), "{pair}");
        // As the sync and the chat list join it, and as search asks it per message.
        let joined = plan(
            "SELECT c.kind FROM memberships mb JOIN conversations c ON c.id = mb.conversation_id
             WHERE mb.user_id = 1",
        );
        assert!(!joined.contains("SCAN direct_pairs"), "{joined}");
        assert!(!joined.contains("SCAN c\n"), "{joined}");
        // A membership check reads the conversation's row, not the user's pairs.
        let exists = plan(
            "SELECT m.id FROM messages m WHERE m.id < 100 AND EXISTS (SELECT 1
             FROM conversation_members mb
             WHERE mb.user_id = 1 AND mb.conversation_id = m.conversation_id)",
        );
        assert!(!exists.contains("direct_pairs"), "{exists}");
        assert!(!exists.contains("SCAN"), "{exists}");
    }
}
