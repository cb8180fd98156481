//! The schema of world rooms' history, wallets and red packets (one migration, so that it
//! stays a leaf: `schema` names it, and it names nothing).

/// Migration 16: world rooms' kept history, wallets with their ledger, and red packets.
pub(crate) const MIGRATION: &str = "CREATE TABLE room_messages (
        id            INTEGER PRIMARY KEY,
        room_id       INTEGER NOT NULL,
        sender_id     INTEGER NOT NULL,
        client_msg_id INTEGER,
        body          TEXT NOT NULL,
        sent_at_ms    INTEGER NOT NULL
    );
    CREATE INDEX room_messages_by_room ON room_messages(room_id, id);
    CREATE UNIQUE INDEX room_messages_dedupe ON room_messages(room_id, sender_id, client_msg_id)
        WHERE client_msg_id IS NOT NULL;
    CREATE TABLE wallets (
        user_id       INTEGER PRIMARY KEY,
        balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0)
    );
    CREATE TABLE wallet_ledger (
        id            INTEGER PRIMARY KEY,
        movement      INTEGER NOT NULL,
        account_kind  INTEGER NOT NULL,
        account_id    INTEGER NOT NULL,
        amount_cents  INTEGER NOT NULL,
        reason        INTEGER NOT NULL,
        ref_id        INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX wallet_ledger_by_account ON wallet_ledger(account_kind, account_id);
    CREATE TABLE red_packets (
        id              INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL,
        sender_id       INTEGER NOT NULL,
        total_cents     INTEGER NOT NULL,
        count           INTEGER NOT NULL,
        mode            INTEGER NOT NULL,
        greeting        TEXT NOT NULL,
        remaining_cents INTEGER NOT NULL,
        remaining_count INTEGER NOT NULL,
        created_at_ms   INTEGER NOT NULL,
        expires_at_ms   INTEGER NOT NULL,
        refunded_cents  INTEGER NOT NULL DEFAULT 0,
        settled         INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX red_packets_unsettled ON red_packets(expires_at_ms) WHERE settled = 0;
    CREATE TABLE red_packet_grabs (
        packet_id     INTEGER NOT NULL,
        user_id       INTEGER NOT NULL,
        amount_cents  INTEGER NOT NULL,
        grabbed_at_ms INTEGER NOT NULL,
        PRIMARY KEY (packet_id, user_id)
    ) WITHOUT ROWID;";
