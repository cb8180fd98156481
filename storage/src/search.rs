//! Full-text search for English and Chinese over a contentless FTS5 index.
//!
//! SQLite's `unicode61` tokenizer splits on spaces and punctuation, which suits English but keeps
//! a run of Chinese characters as one token. So before indexing (and before querying) every CJK
//! character is set apart by spaces, making each one a token; a query for 你好 becomes the
//! phrase "你 好", which matches the adjacent characters anywhere in "你好世界". English words
//! are matched by prefix ("wor" finds "world"). The index lives in its own database file, fed
//! off the commit path by the indexer thread ([`crate::indexer`]), in chunks, following
//! `messages` by id; readers see it attached as `search`.

use rusqlite::{params, Connection};

use crate::int::{get_u64, Uint};
use crate::row::{message_row, pair_of, StoredMessage, MESSAGE_COLUMNS, MESSAGE_COLUMN_COUNT};
use crate::{ConversationId, StorageError, UserId};

/// Whether `c` is a CJK character that the index treats as a word of its own.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF) // CJK Extensions B..
}

/// The text as the index sees it: CJK characters separated by spaces.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Builds an FTS5 query from what a user typed: every term must match; a run of CJK characters
/// is a phrase of single characters; other words match as prefixes. None when nothing is
/// searchable.
pub fn fts_query(input: &str) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, terms: &mut Vec<String>| {
        if !word.is_empty() {
            terms.push(format!("\"{}\"*", word));
            word.clear();
        }
    };
    let flush_cjk = |cjk: &mut Vec<char>, terms: &mut Vec<String>| {
        if !cjk.is_empty() {
            let phrase: Vec<String> = cjk.iter().map(|c| c.to_string()).collect();
            terms.push(format!("\"{}\"", phrase.join(" ")));
            cjk.clear();
        }
    };
    for c in input.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut terms);
            cjk.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk, &mut terms);
            word.push(c);
        } else {
            flush_word(&mut word, &mut terms);
            flush_cjk(&mut cjk, &mut terms);
        }
    }
    flush_word(&mut word, &mut terms);
    flush_cjk(&mut cjk, &mut terms);
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" "))
    }
}

/// The protocol's `MESSAGE_KIND_RECALLED`: a recalled message, never indexed.
pub(crate) const RECALLED: i32 = 5;

/// Indexes up to `limit` messages with id > `upto` in one transaction on the indexer's
/// connection (the search database, with the messages attached as `src`); returns the new
/// mark and how many messages it indexed. A deferred `BEGIN`: the message database is only
/// read, so its write lock is never taken.
///
/// First, in the same snapshot, it takes the recalls logged since its last step
/// ([`unindex_recalled`]), so that a message is deleted from the index exactly when it was
/// indexed: one recalled at or below the mark was indexed with its text; one above it is
/// indexed by this or a later step as what it is now, a recalled message, which is skipped.
pub(crate) fn index_step(
    c: &Connection,
    upto: u64,
    limit: usize,
) -> Result<(u64, usize), StorageError> {
    crate::db::run_cached(c, "BEGIN")?;
    unindex_recalled(c, upto)?;
    let mut mark = upto;
    let mut n = 0;
    {
        let mut read = c.prepare_cached(
            "SELECT id, body, kind FROM src.messages WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut add =
            c.prepare_cached("INSERT INTO main.message_fts(rowid, body) VALUES (?1, ?2)")?;
        let mut rows = read.query(params![Uint(upto), Uint::from_usize(limit)])?;
        while let Some(row) = rows.next()? {
            let id = get_u64(row, 0)?;
            if row.get::<_, i32>(2)? != RECALLED {
                let body: String = row.get(1)?;
                add.execute(params![Uint(id), segment(&body)])?;
            }
            mark = id;
            n += 1;
        }
    }
    c.prepare_cached("UPDATE main.meta SET value = ?1 WHERE key = 'indexed_upto'")?
        .execute([Uint(mark)])?;
    crate::db::run_cached(c, "COMMIT")?;
    Ok((mark, n))
}

/// Deletes from the index the messages recalled since the last call (the `src.recalls`
/// entries after `meta.recalls_upto`) that are indexed, those at or below `upto`; moves the
/// mark past them all. Runs inside [`index_step`]'s transaction, or its own.
fn unindex_recalled(c: &Connection, upto: u64) -> Result<(), StorageError> {
    let done: i64 = c
        .prepare_cached("SELECT value FROM main.meta WHERE key = 'recalls_upto'")?
        .query_row([], |r| r.get(0))?;
    let mut read = c.prepare_cached(
        "SELECT id, message_id FROM src.recalls WHERE id > ?1 ORDER BY id LIMIT 1024",
    )?;
    let mut delete = c.prepare_cached("DELETE FROM main.message_fts WHERE rowid = ?1")?;
    let mut mark = done;
    let mut rows = read.query([done])?;
    while let Some(row) = rows.next()? {
        mark = row.get(0)?;
        let message = get_u64(row, 1)?;
        if message <= upto {
            delete.execute([Uint(message)])?;
        }
    }
    if mark != done {
        c.prepare_cached("UPDATE main.meta SET value = ?1 WHERE key = 'recalls_upto'")?
            .execute([mark])?;
    }
    Ok(())
}

/// Whether recalls wait for [`index_step`] (a look at the message database between steps,
/// when no new message does).
pub(crate) fn recalls_waiting(c: &Connection) -> Result<bool, StorageError> {
    let waiting: bool = c
        .prepare_cached(
            "SELECT COALESCE((SELECT MAX(id) FROM src.recalls), 0)
                  > (SELECT value FROM main.meta WHERE key = 'recalls_upto')",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(waiting)
}

/// Empties the index (on the indexer's connection) and sets its mark back to 0.
pub(crate) fn reset_index(c: &Connection) -> Result<(), StorageError> {
    c.execute_batch(
        "BEGIN;
         INSERT INTO main.message_fts(message_fts) VALUES ('delete-all');
         UPDATE main.meta SET value = 0 WHERE key IN ('indexed_upto', 'recalls_upto');
         COMMIT;",
    )?;
    Ok(())
}

pub(crate) fn search(
    c: &Connection,
    user: UserId,
    query: &str,
    conversation: Option<ConversationId>,
    before_id: Option<u64>,
    limit: usize,
) -> Result<Vec<StoredMessage>, StorageError> {
    let Some(q) = fts_query(query) else {
        return Ok(Vec::new());
    };
    let mut st = c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS}, c.kind, c.user_a, c.user_b
         FROM search.message_fts f
         JOIN messages m ON m.id = f.rowid
         JOIN conversations c ON c.id = m.conversation_id
         WHERE f.message_fts MATCH ?1 AND f.rowid < ?3 AND (?4 = 0 OR m.conversation_id = ?4)
           AND m.kind <> 5
           AND EXISTS (SELECT 1 FROM conversation_members mb
                       WHERE mb.user_id = ?2 AND mb.conversation_id = m.conversation_id)
           AND NOT EXISTS (SELECT 1 FROM members g WHERE g.user_id = ?2
                           AND g.conversation_id = m.conversation_id AND m.seq <= g.joined_seq)
         ORDER BY f.rowid DESC LIMIT ?5"
    ))?;
    let rows = st.query_map(
        params![
            q,
            Uint(user),
            before_id.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX)),
            Uint(conversation.unwrap_or(0)),
            Uint::from_usize(limit)
        ],
        |r| {
            let n = MESSAGE_COLUMN_COUNT;
            let pair = pair_of(r.get(n)?, r.get(n + 1)?, r.get(n + 2)?);
            message_row(r, pair)
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn segments_cjk_only() {
        assert_eq!(segment("hi你好"), "hi 你  好 ");
        assert_eq!(segment("hello world"), "hello world");
    }

    #[test]
    fn builds_queries() {
        assert_eq!(fts_query("你好").as_deref(), Some("\"你 好\""));
        assert_eq!(fts_query("world").as_deref(), Some("\"world\"*"));
        assert_eq!(
            fts_query("hello, 世界!").as_deref(),
            Some("\"hello\"* \"世 界\"")
        );
        // Quotes and operators are not passed through.
        assert_eq!(
            fts_query("\"a\" OR NEAR(").as_deref(),
            Some("\"a\"* \"OR\"* \"NEAR\"*")
        );
        assert_eq!(fts_query("  ...  "), None);
    }

    /// Ids of the indexed messages matching the FTS5 query `q`, on a search database.
    pub(crate) fn matching(c: &Connection, q: &str) -> Vec<i64> {
        let mut st = c
            .prepare("SELECT rowid FROM message_fts WHERE message_fts MATCH ?1 ORDER BY rowid")
            .unwrap();
        st.query_map([q], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}
