//! Friend groups and friend suggestions.

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

impl Client {
    /// The user's friends by friend group: the default group ("") first, then by name.
    ///
    /// # Errors
    /// A connection error.
    pub async fn friend_groups(&self) -> Result<Vec<pb::FriendGroup>, ClientError> {
        match self
            .call(RequestKind::FriendGroups(pb::ListFriendGroups {}))
            .await?
        {
            ResponseResult::FriendGroups(l) => Ok(l.groups),
            other => Err(unexpected("ListFriendGroups", &other)),
        }
    }

    /// Moves the friend `user_id` into the friend group `group` ("" = the default group);
    /// returns the friend as now grouped.
    ///
    /// # Errors
    /// `NOT_FRIENDS`, `INVALID_ARGUMENT` (name too long), or a connection error.
    pub async fn set_friend_group(
        &self,
        user_id: u64,
        group: &str,
    ) -> Result<pb::Friend, ClientError> {
        let r = pb::SetFriendGroup {
            user_id,
            group: group.to_owned(),
        };
        match self.call(RequestKind::FriendGroupSet(r)).await? {
            ResponseResult::FriendGroupSet(f) => Ok(f),
            other => Err(unexpected("SetFriendGroup", &other)),
        }
    }

    /// Up to `limit` (0 = 20) people who share friends or groups with the user, most shared
    /// first.
    ///
    /// # Errors
    /// A connection error.
    pub async fn friend_suggestions(
        &self,
        limit: u32,
    ) -> Result<Vec<pb::FriendSuggestion>, ClientError> {
        let r = pb::GetFriendSuggestions { limit };
        match self.call(RequestKind::FriendSuggestions(r)).await? {
            ResponseResult::FriendSuggestions(l) => Ok(l.suggestions),
            other => Err(unexpected("GetFriendSuggestions", &other)),
        }
    }
}
