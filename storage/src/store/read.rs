//! The store's read API: accounts, conversations, history, sync and search, each run on a
//! pooled reader.

use super::Store;
use crate::message::{self, ConversationPosition, HistoryQuery, StoredMessage, SyncPage};
use crate::{account, pairs, search, social};
use crate::{ConversationId, SessionRecord, StorageError, UserId, UserRecord};

impl Store {
    /// Looks up a user by username (case-insensitive).
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StorageError> {
        let username = username.to_owned();
        self.read(move |c| account::user_by_name(c, &username))
            .await
    }

    /// Looks up a user by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StorageError> {
        self.read(move |c| account::user_by_id(c, id)).await
    }

    /// Finds the live session whose token hashes to `token_hash`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn session(
        &self,
        token_hash: Vec<u8>,
    ) -> Result<Option<SessionRecord>, StorageError> {
        self.read(move |c| account::session(c, &token_hash)).await
    }

    /// The 1:1 conversation between two users, if it exists.
    ///
    /// # Errors
    /// Database errors.
    pub async fn direct_conversation(
        &self,
        a: UserId,
        b: UserId,
    ) -> Result<Option<ConversationId>, StorageError> {
        self.read(move |c| pairs::direct_conversation(c, a, b))
            .await
    }

    /// Messages of `query.conversation`, newest first, if `user` is a member.
    ///
    /// # Errors
    /// [`StorageError::Forbidden`] when `user` is not a member; database errors.
    pub async fn history(
        &self,
        user: UserId,
        query: HistoryQuery,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        Ok(self.history_page(user, query, usize::MAX).await?.messages)
    }

    /// [`Store::history`] as a page of at most about `max_bytes` of encoded messages (the
    /// first message always), and whether more may follow.
    ///
    /// # Errors
    /// As [`Store::history`].
    pub async fn history_page(
        &self,
        user: UserId,
        query: HistoryQuery,
        max_bytes: usize,
    ) -> Result<message::HistoryPage, StorageError> {
        self.read_view(move |c, v| message::history(c, v, user, &query, max_bytes))
            .await
    }

    /// What `user`'s `device` missed: messages after `positions` (or after the device's acked
    /// cursor for unlisted conversations), oldest first, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sync(
        &self,
        user: UserId,
        device: String,
        positions: Vec<ConversationPosition>,
        limit: usize,
    ) -> Result<SyncPage, StorageError> {
        self.sync_within(user, device, positions, limit, usize::MAX)
            .await
    }

    /// [`Store::sync`] with a page of at most about `max_bytes` of encoded messages (the first
    /// message always); a page cut short has `has_more` set.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sync_within(
        &self,
        user: UserId,
        device: String,
        positions: Vec<ConversationPosition>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<SyncPage, StorageError> {
        self.read_view(move |c, v| message::sync(c, v, user, &device, &positions, limit, max_bytes))
            .await
    }

    /// One page of `user`'s conversations, most recently active first (ties: higher id
    /// first), each with its newest message and the exact number of messages from others
    /// after the user's read position; and whether more follow.
    ///
    /// # Errors
    /// Database errors.
    pub async fn conversations(
        &self,
        user: UserId,
        page: social::ConversationPage,
    ) -> Result<(Vec<social::ConversationRecord>, bool), StorageError> {
        self.read_view(move |c, v| social::conversations(c, v, user, page))
            .await
    }

    /// Full-text search over `user`'s conversations, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn search(
        &self,
        user: UserId,
        query: String,
        conversation: Option<ConversationId>,
        before_id: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        self.read(move |c| search::search(c, user, &query, conversation, before_id, limit))
            .await
    }

    /// The message `seq` of `conversation` if `user` may read it (a member; in a group, a
    /// message after their joining); `None` when there is none they may read.
    ///
    /// # Errors
    /// [`StorageError::Forbidden`] when `user` is not a member; database errors.
    pub async fn message_for(
        &self,
        user: UserId,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<Option<StoredMessage>, StorageError> {
        self.read_view(move |c, v| crate::blobs::message_for(c, v, user, conversation, seq))
            .await
    }
}
