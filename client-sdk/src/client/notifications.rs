//! System notifications: the list with read state, and marking them read.

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

impl Client {
    /// Up to `limit` (0 = 50, at most 200) of the user's notifications with ids above
    /// `after_id` (0 = from the oldest), oldest first, with `has_more` and the unread count.
    ///
    /// # Errors
    /// A connection error.
    pub async fn notifications(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<pb::NotificationList, ClientError> {
        let r = pb::ListNotifications { after_id, limit };
        match self.call(RequestKind::Notifications(r)).await? {
            ResponseResult::Notifications(l) => Ok(l),
            other => Err(unexpected("ListNotifications", &other)),
        }
    }

    /// Marks notification `id` read, or every one with `id` 0; returns how many became read
    /// and how many unread are left.
    ///
    /// # Errors
    /// `NOT_FOUND` for an id the user does not have, or a connection error.
    pub async fn mark_notification_read(
        &self,
        id: u64,
    ) -> Result<pb::NotificationReadOk, ClientError> {
        let r = pb::MarkNotificationRead { id, all: id == 0 };
        match self.call(RequestKind::NotificationRead(r)).await? {
            ResponseResult::NotificationRead(ok) => Ok(ok),
            other => Err(unexpected("MarkNotificationRead", &other)),
        }
    }
}
