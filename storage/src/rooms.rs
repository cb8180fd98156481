//! World rooms' history: each room keeps its newest messages (`room_messages`), pruned to a
//! bound by the job that stores each new one. Membership is the server's, in memory; nothing
//! here knows who is in a room, and there is no per-member delivery state.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::int::{get_u64, Bound, Uint};
use crate::{StorageError, UserId};

/// A stored room message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMessageRecord {
    /// Increasing id (the table's rowid).
    pub id: u64,
    /// The room.
    pub room: u64,
    /// The sender.
    pub sender: UserId,
    /// The sender's id for deduplication; 0 = none.
    pub client_msg_id: u64,
    /// The text.
    pub text: String,
    /// When it was stored (unix ms).
    pub sent_at_ms: i64,
}

const COLUMNS: &str = "id, room_id, sender_id, client_msg_id, body, sent_at_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<RoomMessageRecord> {
    let cmid: Option<i64> = r.get(3)?;
    Ok(RoomMessageRecord {
        id: get_u64(r, 0)?,
        // Room ids are the client's u64, stored by their bits.
        room: r.get::<_, i64>(1)?.cast_unsigned(),
        sender: get_u64(r, 2)?,
        client_msg_id: cmid.map_or(0, i64::cast_unsigned),
        text: r.get(4)?,
        sent_at_ms: r.get(5)?,
    })
}

/// Stores a message in `room` and deletes the room's messages beyond the newest `keep`; a
/// resend (same room, sender and non-zero client id, still kept) returns the original and
/// `true`. Run on the writer ([`crate::Writer::call`]).
///
/// # Errors
/// Database errors.
pub fn store(
    c: &Connection,
    room: u64,
    sender: UserId,
    client_msg_id: u64,
    text: &str,
    keep: usize,
    now: i64,
) -> Result<(RoomMessageRecord, bool), StorageError> {
    let room_key = room.cast_signed();
    let cmid = (client_msg_id != 0).then_some(client_msg_id.cast_signed());
    if let Some(cmid) = cmid {
        let original = c
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM room_messages
                 WHERE room_id = ?1 AND sender_id = ?2 AND client_msg_id = ?3"
            ))?
            .query_row(params![room_key, Uint(sender), cmid], row)
            .optional()?;
        if let Some(original) = original {
            return Ok((original, true));
        }
    }
    c.prepare_cached(
        "INSERT INTO room_messages(room_id, sender_id, client_msg_id, body, sent_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![room_key, Uint(sender), cmid, text, now])?;
    let id = u64::try_from(c.last_insert_rowid()).unwrap_or(0);
    // The oldest kept message's id: everything of the room below it goes.
    c.prepare_cached(
        "DELETE FROM room_messages WHERE room_id = ?1 AND id < (
             SELECT id FROM room_messages WHERE room_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![room_key, Uint::from_usize(keep.max(1) - 1)])?;
    Ok((
        RoomMessageRecord {
            id,
            room,
            sender,
            client_msg_id,
            text: text.to_owned(),
            sent_at_ms: now,
        },
        false,
    ))
}

/// Up to `limit` of `room`'s kept messages with id below `before_id` (0 = from the newest),
/// newest first, and whether older ones follow.
///
/// # Errors
/// Database errors.
pub fn history(
    c: &Connection,
    room: u64,
    before_id: u64,
    limit: usize,
) -> Result<(Vec<RoomMessageRecord>, bool), StorageError> {
    let before = if before_id == 0 { u64::MAX } else { before_id };
    let mut list: Vec<RoomMessageRecord> = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM room_messages WHERE room_id = ?1 AND id < ?2
             ORDER BY id DESC LIMIT ?3"
        ))?
        .query_map(
            params![
                room.cast_signed(),
                Bound(before),
                Uint::from_usize(limit + 1)
            ],
            row,
        )?
        .collect::<Result<_, _>>()?;
    let more = list.len() > limit;
    list.truncate(limit);
    Ok((list, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_paged_and_deduplicated() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut c).unwrap();
        let room = u64::MAX - 1;
        for i in 1..=12u64 {
            let (m, dup) = store(&c, room, 7, i, &format!("m{i}"), 10, i as i64).unwrap();
            assert!(!dup);
            assert_eq!(m.room, room);
        }
        store(&c, 5, 7, 1, "other room", 10, 0).unwrap();
        let (page, more) = history(&c, room, 0, 4).unwrap();
        let texts: Vec<_> = page.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["m12", "m11", "m10", "m9"]);
        assert!(more);
        let (rest, more) = history(&c, room, page[3].id, 100).unwrap();
        assert_eq!(rest.len(), 6, "only the newest 10 are kept");
        assert_eq!(rest.last().unwrap().text, "m3");
        assert!(!more);
        // A resend of a kept message is the original.
        let (again, dup) = store(&c, room, 7, 12, "changed", 10, 99).unwrap();
        assert!(dup);
        assert_eq!(again, page[0]);
        assert_eq!(history(&c, 5, 0, 10).unwrap().0.len(), 1);
    }
}
