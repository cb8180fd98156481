//! Text normalisation shared by the storage files.

use rusqlite::Connection;

use crate::StorageError;

/// The form of a username or nickname that user search compares: NFKC-normalized (so the
/// full-width `ＡＢＣ１２３` of a CJK input method meets `abc123`, a decomposed `é` meets the
/// composed one, and `ﬁ` meets `fi`), then Unicode lower case one character at a time (so
/// `ÄNNE` and `änne` meet), with the final sigma `ς` folded into `σ` (so `ΟΔΟΣ` and `οδος`
/// meet). Stored beside each name (`users.username_key`, `users.nickname_key`) on every
/// write, so a search compares plain strings.
pub fn search_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

/// Computes the search keys of the users stored before migration 3, and again for 7 (NFKC).
pub(crate) fn fill_search_keys(c: &Connection) -> Result<(), StorageError> {
    let users: Vec<(i64, String, String)> = c
        .prepare("SELECT id, username, nickname FROM users")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut set =
        c.prepare("UPDATE users SET username_key = ?1, nickname_key = ?2 WHERE id = ?3")?;
    for (id, username, nickname) in users {
        set.execute(rusqlite::params![
            search_key(&username),
            search_key(&nickname),
            id
        ])?;
    }
    Ok(())
}
