//! Migration 19: files, uploads, their uses, stickers and file offers; a message's file and
//! transcript.
//!
//! `blobs` holds one row per distinct content (sha256, size), stored once on disk; `files` one
//! row per upload (its own id, name and owner) pointing at a blob. `files.refs` counts what uses
//! a file: messages (`file_uses`), avatars (`public`, users' and groups') and stickers, kept by
//! the triggers below; `unused_since_ms` is set when it drops to 0, and the upkeep sweep
//! deletes the file after a grace period (`blobs.refs` counts the files of a blob). File
//! and upload ids are never reused (AUTOINCREMENT): an old message's file id, or a stray
//! partial file, never names a newer one.

/// The SQL of migration 19.
pub(crate) const MIGRATION: &str = "
    CREATE TABLE blobs (
        id            INTEGER PRIMARY KEY,
        sha256        BLOB NOT NULL,
        size          INTEGER NOT NULL,
        width         INTEGER NOT NULL DEFAULT 0,
        height        INTEGER NOT NULL DEFAULT 0,
        sniffed_mime  TEXT NOT NULL DEFAULT '',
        refs          INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX blobs_by_hash ON blobs(sha256, size);
    CREATE TABLE files (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        blob_id         INTEGER NOT NULL,
        owner           INTEGER NOT NULL,
        name            TEXT NOT NULL,
        mime            TEXT NOT NULL,
        duration_ms     INTEGER NOT NULL DEFAULT 0,
        thumbnail_id    INTEGER NOT NULL DEFAULT 0,
        is_thumbnail    INTEGER NOT NULL DEFAULT 0,
        created_at_ms   INTEGER NOT NULL,
        refs            INTEGER NOT NULL DEFAULT 0,
        public          INTEGER NOT NULL DEFAULT 0,
        unused_since_ms INTEGER
    );
    CREATE INDEX files_by_owner ON files(owner);
    CREATE INDEX files_by_blob ON files(blob_id);
    CREATE INDEX files_unused ON files(created_at_ms) WHERE refs = 0;
    CREATE INDEX files_by_thumbnail ON files(thumbnail_id) WHERE thumbnail_id <> 0;
    CREATE TABLE uploads (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        owner         INTEGER NOT NULL,
        sha256        BLOB NOT NULL,
        size          INTEGER NOT NULL,
        name          TEXT NOT NULL,
        mime          TEXT NOT NULL,
        duration_ms   INTEGER NOT NULL DEFAULT 0,
        chunks        BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX uploads_by_owner ON uploads(owner, sha256, size);
    CREATE INDEX uploads_by_age ON uploads(created_at_ms);
    CREATE TABLE file_uses (
        file_id         INTEGER NOT NULL,
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        message_id      INTEGER NOT NULL,
        sender_id       INTEGER NOT NULL,
        offer           INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (file_id, conversation_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX file_uses_by_message ON file_uses(message_id);
    CREATE INDEX file_uses_by_seq ON file_uses(conversation_id, seq);
    CREATE TABLE stickers (
        user_id     INTEGER NOT NULL,
        file_id     INTEGER NOT NULL,
        added_at_ms INTEGER NOT NULL,
        PRIMARY KEY (user_id, file_id)
    ) WITHOUT ROWID;
    CREATE INDEX stickers_by_time ON stickers(user_id, added_at_ms);
    CREATE TABLE file_offers (
        conversation_id INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        user_id         INTEGER NOT NULL,
        state           INTEGER NOT NULL,
        answered_at_ms  INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, seq, user_id)
    ) WITHOUT ROWID;
    ALTER TABLE messages ADD COLUMN attachment TEXT;
    ALTER TABLE messages ADD COLUMN transcript TEXT;
    CREATE TRIGGER file_uses_ref AFTER INSERT ON file_uses BEGIN
        UPDATE files SET refs = refs + 1, unused_since_ms = NULL WHERE id = new.file_id;
    END;
    CREATE TRIGGER file_uses_unref AFTER DELETE ON file_uses BEGIN
        UPDATE files SET refs = refs - 1,
            unused_since_ms = CASE WHEN refs = 1 THEN CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) END
        WHERE id = old.file_id AND refs > 0;
    END;
    CREATE TRIGGER stickers_ref AFTER INSERT ON stickers BEGIN
        UPDATE files SET refs = refs + 1, unused_since_ms = NULL WHERE id = new.file_id;
    END;
    CREATE TRIGGER stickers_unref AFTER DELETE ON stickers BEGIN
        UPDATE files SET refs = refs - 1,
            unused_since_ms = CASE WHEN refs = 1 THEN CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) END
        WHERE id = old.file_id AND refs > 0;
    END;
    CREATE TRIGGER users_avatar_ref AFTER UPDATE OF avatar ON users WHEN old.avatar IS NOT new.avatar BEGIN
        UPDATE files SET refs = refs + 1, public = public + 1, unused_since_ms = NULL
        WHERE new.avatar <> '' AND new.avatar NOT GLOB '*[^0-9]*' AND id = CAST(new.avatar AS INTEGER);
        UPDATE files SET refs = refs - 1, public = public - 1,
            unused_since_ms = CASE WHEN refs = 1 THEN CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) END
        WHERE old.avatar <> '' AND old.avatar NOT GLOB '*[^0-9]*' AND id = CAST(old.avatar AS INTEGER)
          AND refs > 0 AND public > 0;
    END;
    CREATE TRIGGER groups_avatar_ref AFTER UPDATE OF avatar ON groups WHEN old.avatar IS NOT new.avatar BEGIN
        UPDATE files SET refs = refs + 1, public = public + 1, unused_since_ms = NULL
        WHERE new.avatar <> '' AND new.avatar NOT GLOB '*[^0-9]*' AND id = CAST(new.avatar AS INTEGER);
        UPDATE files SET refs = refs - 1, public = public - 1,
            unused_since_ms = CASE WHEN refs = 1 THEN CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) END
        WHERE old.avatar <> '' AND old.avatar NOT GLOB '*[^0-9]*' AND id = CAST(old.avatar AS INTEGER)
          AND refs > 0 AND public > 0;
    END;
    CREATE TRIGGER groups_avatar_new AFTER INSERT ON groups WHEN new.avatar <> '' BEGIN
        UPDATE files SET refs = refs + 1, public = public + 1, unused_since_ms = NULL
        WHERE new.avatar NOT GLOB '*[^0-9]*' AND id = CAST(new.avatar AS INTEGER);
    END;";
