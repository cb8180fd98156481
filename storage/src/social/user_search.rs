//! User search by username or nickname.

use rusqlite::{params, Connection};

use super::profile::{public_row, PublicUser, PUBLIC_COLUMNS};
use crate::int::Uint;
use crate::text::search_key;
use crate::{StorageError, UserId};

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Users whose username or nickname contains `query`, case-insensitively in any script (by
/// [`search_key`]; Chinese and other scripts without case by substring): exact matches first,
/// then prefixes, then the rest, shorter usernames first. Users who blocked `searcher` are
/// left out. Returns one page and whether more follow. A scan of the user table: fine for the
/// tens of thousands of users of a LAN server.
///
/// # Errors
/// Database errors.
pub fn search_users(
    c: &Connection,
    searcher: UserId,
    query: &str,
    limit: usize,
    offset: usize,
) -> Result<(Vec<PublicUser>, bool), StorageError> {
    let key = search_key(query);
    let escaped = like_escape(&key);
    let prefix = format!("{escaped}%");
    let anywhere = format!("%{escaped}%");
    let mut st = c.prepare_cached(&format!(
        "SELECT {PUBLIC_COLUMNS},
            CASE WHEN u.username_key = ?1 OR u.nickname_key = ?1 THEN 0
                 WHEN u.username_key LIKE ?2 ESCAPE '\\' OR u.nickname_key LIKE ?2 ESCAPE '\\' THEN 1
                 ELSE 2 END AS rank
         FROM users u
         WHERE (u.username_key LIKE ?3 ESCAPE '\\' OR u.nickname_key LIKE ?3 ESCAPE '\\')
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = ?4)
         ORDER BY rank, length(u.username), u.username
         LIMIT ?5 OFFSET ?6"
    ))?;
    let rows = st.query_map(
        params![
            key,
            prefix,
            anywhere,
            Uint(searcher),
            Uint::from_usize(limit.saturating_add(1)),
            Uint::from_usize(offset)
        ],
        |r| public_row(r, 0),
    )?;
    let mut users: Vec<PublicUser> = rows.collect::<Result<_, _>>()?;
    let more = users.len() > limit;
    users.truncate(limit);
    Ok((users, more))
}
