//! Receipts and recall.

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

impl Client {
    /// Who received and read message `seq` of `conversation_id` (in 1:1 also the peer's read
    /// and delivered positions).
    ///
    /// # Errors
    /// `FORBIDDEN` (not a member; in a group, neither the sender nor an admin), `NOT_FOUND`
    /// (no such message), `INVALID_ARGUMENT`, or a connection error.
    pub async fn receipts(
        &self,
        conversation_id: u64,
        seq: u64,
    ) -> Result<pb::Receipts, ClientError> {
        let r = pb::GetReceipts {
            conversation_id,
            seq,
        };
        match self.call(RequestKind::Receipts(r)).await? {
            ResponseResult::Receipts(r) => Ok(r),
            other => Err(unexpected("GetReceipts", &other)),
        }
    }

    /// Recalls message `seq` of `conversation_id`: one's own, or in a group as an admin or
    /// the owner, within the server's recall window. Every member gets
    /// [`crate::Event::MessageRecalled`].
    ///
    /// # Errors
    /// `RECALL_EXPIRED`, `ALREADY_RECALLED`, `FORBIDDEN`, `NOT_FOUND`, `INVALID_ARGUMENT`,
    /// or a connection error.
    pub async fn recall(&self, conversation_id: u64, seq: u64) -> Result<(), ClientError> {
        let r = pb::RecallMessage {
            conversation_id,
            seq,
        };
        match self.call(RequestKind::Recall(r)).await? {
            ResponseResult::Recall(_) => Ok(()),
            other => Err(unexpected("RecallMessage", &other)),
        }
    }

    /// Up to `limit` (0 = 100) recalls in the user's conversations after the recall
    /// `after_recall_id` (0 = from the first), oldest first: what a device that was offline
    /// missed of [`crate::Event::MessageRecalled`]. While `has_more`, ask again with the last
    /// one's `recall_id`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT`, or a connection error.
    pub async fn recalls(
        &self,
        after_recall_id: u64,
        limit: u32,
    ) -> Result<pb::RecallList, ClientError> {
        let r = pb::ListRecalls {
            after_recall_id,
            limit,
        };
        match self.call(RequestKind::Recalls(r)).await? {
            ResponseResult::Recalls(l) => Ok(l),
            other => Err(unexpected("ListRecalls", &other)),
        }
    }
}
