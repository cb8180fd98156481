use super::*;
use crate::blobs::read::OFFER_PENDING;

fn record() -> FileRecord {
    FileRecord {
        id: 7,
        blob_id: 3,
        owner: 2,
        name: "a b\tc.png".into(),
        mime: "image/png".into(),
        size: 1000,
        sha256: vec![0xab; 32],
        width: 4,
        height: 5,
        duration_ms: 0,
        thumbnail_id: 9,
        created_at_ms: 123,
    }
}

#[test]
fn a_file_ref_round_trips_through_its_text() {
    let f = FileRef {
        file: record(),
        offer: true,
    };
    assert_eq!(FileRef::decode(&f.encode()), Some(f));
    assert_eq!(FileRef::decode("garbage"), None);
    assert_eq!(FileRef::decode("1 2\nname"), None);
}

#[test]
fn the_chunk_bitmap_counts_bytes() {
    let c = crate::schema::migrated_in_memory();
    let size = CHUNK_SIZE * 2 + 10;
    let up = begin_upload(&c, 1, &[1; 32], size, "f", "", 0, 5).unwrap();
    assert_eq!(up.chunk_count(), 3);
    assert_eq!(up.chunks.len(), 1);
    let up = record_chunk(&c, 1, up.id, 2).unwrap();
    assert_eq!(up.received_bytes(), 10);
    assert!(!up.complete());
    assert!(matches!(
        record_chunk(&c, 2, up.id, 0),
        Err(crate::StorageError::UnknownUpload)
    ));
    record_chunk(&c, 1, up.id, 0).unwrap();
    let up = record_chunk(&c, 1, up.id, 1).unwrap();
    assert!(up.complete());
    assert_eq!(up.received_bytes(), size);
    assert_eq!(files_owned_bytes(&c, 1).unwrap(), size);
}

/// The counts over whole bitmap bytes and a partial last one, a short last chunk, and bits
/// past the last chunk (never set by `record_chunk`) left out.
#[test]
fn the_chunk_counts_agree_with_the_bitmap_bit_by_bit() {
    let c = crate::schema::migrated_in_memory();
    let size = CHUNK_SIZE * 10 + 7;
    let mut up = begin_upload(&c, 1, &[1; 32], size, "f", "", 0, 5).unwrap();
    let by_bits = |up: &UploadRecord| -> u64 {
        (0..up.chunk_count())
            .filter(|&i| up.has_chunk(i))
            .map(|i| up.chunk_len(i))
            .sum()
    };
    for i in [3, 10, 0, 7, 8, 1, 2, 4, 5, 6, 9] {
        assert!(!up.complete());
        up = record_chunk(&c, 1, up.id, i).unwrap();
        assert_eq!(up.received_bytes(), by_bits(&up), "after chunk {i}");
    }
    assert!(up.complete());
    assert_eq!(up.received_bytes(), size);
    let mut stray = up.clone();
    stray.chunks = vec![0xff, 0xff, 0xff];
    assert_eq!(stray.received_bytes(), size);
    // Chunk 10 (bit 2 of the second byte), and stray bits above it.
    stray.chunks = vec![0, 0b1111_1100];
    assert_eq!(stray.received_bytes(), 7);
    assert!(!stray.complete());
}

#[test]
fn references_keep_a_file_and_the_sweep_takes_unused_ones() {
    let c = crate::schema::migrated_in_memory();
    crate::account::insert_user(&c, "u1", "n", b"s", b"h").unwrap();
    let up = begin_upload(&c, 1, &[1; 32], 10, "f.png", "", 0, 0).unwrap();
    let blob = NewBlob {
        sha256: vec![1; 32],
        size: 10,
        width: 2,
        height: 2,
        sniffed_mime: "image/png".into(),
        duration_ms: None,
        thumbnail: Some((vec![2; 32], 5, 1, 1)),
    };
    let f = finish_upload(&c, 1, up.id, &blob, 0).unwrap().file;
    assert_ne!(f.thumbnail_id, 0);
    assert_eq!((f.width, f.mime.as_str()), (2, "image/png"));
    // A second upload of the same bytes shares the blob.
    let g = dedup_file(&c, 1, f.id, "other.png", "", 0, 0)
        .unwrap()
        .unwrap();
    assert_eq!((g.blob_id, g.name.as_str()), (f.blob_id, "other.png"));
    c.execute(
        "UPDATE users SET avatar = ?1 WHERE id = 1",
        [f.id.to_string()],
    )
    .unwrap();
    assert!(matches!(access(&c, 5, f.id).unwrap(), Access::Readable(_)));
    assert_eq!(access(&c, 5, g.id).unwrap(), Access::Forbidden);
    assert!(matches!(
        access(&c, 5, f.thumbnail_id).unwrap(),
        Access::Readable(_)
    ));
    // Unused but young: kept. g (never used) goes once upload_ttl passed.
    let s = sweep(&c, 1000, 0, 500, 100).unwrap();
    assert!(s.blobs.is_empty());
    assert!(file(&c, g.id).unwrap().is_none());
    // The avatar changes: f, then its thumbnail, go with their blobs.
    c.execute("UPDATE users SET avatar = '' WHERE id = 1", [])
        .unwrap();
    let s = sweep(&c, i64::MAX / 2, 0, i64::MAX / 4, 100).unwrap();
    assert_eq!(s.blobs.len(), 2);
    assert!(file(&c, f.id).unwrap().is_none());
    assert_eq!(access(&c, 1, f.id).unwrap(), Access::NotFound);
    assert_eq!(OFFER_PENDING, 1);
}

#[test]
fn stickers_are_capped_and_listed_newest_first() {
    let c = crate::schema::migrated_in_memory();
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let up = begin_upload(&c, 1, &[i; 32], 10, "s", "", 0, 0).unwrap();
        let b = NewBlob {
            sha256: vec![i; 32],
            size: 10,
            ..NewBlob::default()
        };
        ids.push(finish_upload(&c, 1, up.id, &b, 0).unwrap().file.id);
    }
    add_sticker(&c, 1, ids[0], 2, 1).unwrap();
    add_sticker(&c, 1, ids[1], 2, 2).unwrap();
    assert!(add_sticker(&c, 1, ids[2], 2, 3).is_err());
    add_sticker(&c, 1, ids[0], 2, 4).unwrap();
    let list: Vec<u64> = stickers(&c, 1).unwrap().iter().map(|f| f.id).collect();
    assert_eq!(list, vec![ids[0], ids[1]]);
    assert!(remove_sticker(&c, 1, ids[0]).unwrap());
    assert!(!remove_sticker(&c, 1, ids[0]).unwrap());
}

/// A stored file of user 1 with these bytes.
fn stored(c: &rusqlite::Connection, seed: u8) -> FileRecord {
    let up = begin_upload(c, 1, &[seed; 32], 10, "f", "", 0, 0).unwrap();
    let b = NewBlob {
        sha256: vec![seed; 32],
        size: 10,
        ..NewBlob::default()
    };
    finish_upload(c, 1, up.id, &b, 0).unwrap().file
}

#[test]
fn group_members_read_what_was_sent_after_their_joining_and_offers_once_accepted() {
    let c = crate::schema::migrated_in_memory();
    for name in ["u1", "u2", "u3"] {
        crate::account::insert_user(&c, name, name, b"s", b"h").unwrap();
    }
    c.execute_batch(
        "INSERT INTO conversations(id, kind, created_at_ms) VALUES (10, 2, 0);
         INSERT INTO members(user_id, conversation_id, joined_at_ms, role, joined_seq)
             VALUES (1, 10, 0, 2, 0), (2, 10, 0, 0, 5);",
    )
    .unwrap();
    let (f, g) = (stored(&c, 1), stored(&c, 2));
    let used = |file: u64, seq: u64, offer: bool| {
        c.execute(
            "INSERT INTO file_uses(file_id, conversation_id, seq, message_id, sender_id, offer)
             VALUES (?1, 10, ?2, ?2, 1, ?3)",
            rusqlite::params![file as i64, seq as i64, offer],
        )
        .unwrap();
    };
    used(f.id, 3, false);
    assert_eq!(
        access(&c, 2, f.id).unwrap(),
        Access::Forbidden,
        "before joining"
    );
    assert_eq!(
        access(&c, 3, f.id).unwrap(),
        Access::Forbidden,
        "not a member"
    );
    used(f.id, 7, false);
    assert!(matches!(access(&c, 2, f.id).unwrap(), Access::Readable(_)));
    used(g.id, 8, true);
    assert_eq!(access(&c, 2, g.id).unwrap(), Access::OfferNotAccepted);
    assert_eq!(offer_state(&c, 2, 10, 8).unwrap(), OFFER_PENDING);
    assert!(matches!(
        answer_offer(&c, 1, 10, 8, OFFER_ACCEPTED, 1),
        Err(crate::StorageError::Forbidden)
    ));
    assert!(matches!(
        answer_offer(&c, 2, 10, 3, OFFER_ACCEPTED, 1),
        Err(crate::StorageError::UnknownMessage)
    ));
    answer_offer(&c, 2, 10, 8, OFFER_DECLINED, 1).unwrap();
    assert_eq!(access(&c, 2, g.id).unwrap(), Access::OfferNotAccepted);
    let members = answer_offer(&c, 2, 10, 8, OFFER_ACCEPTED, 2).unwrap();
    assert_eq!(members, vec![1, 2]);
    assert!(matches!(access(&c, 2, g.id).unwrap(), Access::Readable(_)));
    assert_eq!(
        offer_states(&c, 2, &[(10, 8)]).unwrap(),
        vec![OFFER_ACCEPTED]
    );
    // A member removed loses it.
    c.execute("DELETE FROM members WHERE user_id = 2", [])
        .unwrap();
    assert_eq!(access(&c, 2, f.id).unwrap(), Access::Forbidden);
}
