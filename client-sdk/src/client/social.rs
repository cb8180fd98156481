//! Profiles, user lookup and search, friends, friend requests, blocks and presence.

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

impl Client {
    /// Changes the user's profile: fields left `None` stay, `Some("")` clears (except the
    /// nickname). Returns the new profile.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (a field breaks its rule), or a connection error.
    pub async fn update_profile(
        &self,
        update: pb::UpdateProfile,
    ) -> Result<pb::Profile, ClientError> {
        match self.call(RequestKind::UpdateProfile(update)).await? {
            ResponseResult::UpdateProfile(p) => {
                self.inner.set_profile(&p);
                Ok(p)
            }
            other => Err(unexpected("UpdateProfile", &other)),
        }
    }

    /// Another user's public profile, by id.
    ///
    /// # Errors
    /// `NOT_FOUND`, or a connection error.
    pub async fn user(&self, user_id: u64) -> Result<pb::PublicProfile, ClientError> {
        self.get_user(pb::GetUser {
            user_id,
            ..Default::default()
        })
        .await
    }

    /// Another user's public profile, by username.
    ///
    /// # Errors
    /// `NOT_FOUND`, or a connection error.
    pub async fn user_by_name(&self, username: &str) -> Result<pb::PublicProfile, ClientError> {
        self.get_user(pb::GetUser {
            username: username.to_owned(),
            ..Default::default()
        })
        .await
    }

    async fn get_user(&self, q: pb::GetUser) -> Result<pb::PublicProfile, ClientError> {
        match self.call(RequestKind::GetUser(q)).await? {
            ResponseResult::GetUser(p) => Ok(p),
            other => Err(unexpected("GetUser", &other)),
        }
    }

    /// Users whose username or nickname contains `query` (exact matches, then prefixes, then
    /// substrings), `limit` (0 = 20) from `offset`.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` (empty or too long query), or a connection error.
    pub async fn search_users(
        &self,
        query: &str,
        limit: u32,
        offset: u32,
    ) -> Result<pb::UserList, ClientError> {
        let q = pb::SearchUsers {
            query: query.to_owned(),
            limit,
            offset,
        };
        match self.call(RequestKind::SearchUsers(q)).await? {
            ResponseResult::SearchUsers(l) => Ok(l),
            other => Err(unexpected("SearchUsers", &other)),
        }
    }

    /// Asks `to_user` to be friends. If they had already asked, this accepts their request
    /// (`became_friends` is set).
    ///
    /// # Errors
    /// `ALREADY_FRIENDS`, `REQUEST_PENDING`, `BLOCKED`, `NOT_FOUND`, `INVALID_ARGUMENT`
    /// (oneself, message too long), or a connection error.
    pub async fn friend_request(
        &self,
        to_user: u64,
        message: &str,
    ) -> Result<pb::FriendRequestSent, ClientError> {
        let r = pb::SendFriendRequest {
            to_user,
            message: message.to_owned(),
        };
        match self.call(RequestKind::FriendRequest(r)).await? {
            ResponseResult::FriendRequest(ok) => Ok(ok),
            other => Err(unexpected("SendFriendRequest", &other)),
        }
    }

    /// Pending friend requests, received and sent.
    ///
    /// # Errors
    /// A connection error.
    pub async fn friend_requests(&self) -> Result<pb::FriendRequestList, ClientError> {
        match self
            .call(RequestKind::FriendRequests(pb::ListFriendRequests {}))
            .await?
        {
            ResponseResult::FriendRequests(l) => Ok(l),
            other => Err(unexpected("ListFriendRequests", &other)),
        }
    }

    /// Accepts or rejects a received friend request; the requester is told by a push.
    ///
    /// # Errors
    /// `NOT_FOUND` (no such pending request to this user), or a connection error.
    pub async fn respond_friend_request(
        &self,
        request_id: u64,
        accept: bool,
    ) -> Result<pb::FriendResponse, ClientError> {
        let r = pb::RespondFriendRequest { request_id, accept };
        match self.call(RequestKind::FriendRespond(r)).await? {
            ResponseResult::FriendRespond(ok) => Ok(ok),
            other => Err(unexpected("RespondFriendRequest", &other)),
        }
    }

    /// The user's friends, with remark and online state.
    ///
    /// # Errors
    /// A connection error.
    pub async fn friends(&self) -> Result<Vec<pb::Friend>, ClientError> {
        match self.call(RequestKind::Friends(pb::ListFriends {})).await? {
            ResponseResult::Friends(l) => Ok(l.friends),
            other => Err(unexpected("ListFriends", &other)),
        }
    }

    /// Sets the private alias for a friend ("" clears it).
    ///
    /// # Errors
    /// `NOT_FRIENDS`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn set_remark(&self, user_id: u64, remark: &str) -> Result<pb::Friend, ClientError> {
        let r = pb::SetRemark {
            user_id,
            remark: remark.to_owned(),
        };
        match self.call(RequestKind::SetRemark(r)).await? {
            ResponseResult::SetRemark(f) => Ok(f),
            other => Err(unexpected("SetRemark", &other)),
        }
    }

    /// Ends a friendship on both sides; the other user is told by a push.
    ///
    /// # Errors
    /// `NOT_FRIENDS`, or a connection error.
    pub async fn delete_friend(&self, user_id: u64) -> Result<(), ClientError> {
        match self
            .call(RequestKind::DeleteFriend(pb::DeleteFriend { user_id }))
            .await?
        {
            ResponseResult::DeleteFriend(_) => Ok(()),
            other => Err(unexpected("DeleteFriend", &other)),
        }
    }

    /// Blocks a user: ends any friendship and pending requests; until unblocked neither can
    /// send the other 1:1 messages or friend requests (`BLOCKED`).
    ///
    /// # Errors
    /// `NOT_FOUND`, `INVALID_ARGUMENT` (oneself), or a connection error.
    pub async fn block(&self, user_id: u64) -> Result<(), ClientError> {
        match self.call(RequestKind::Block(pb::Block { user_id })).await? {
            ResponseResult::Block(_) => Ok(()),
            other => Err(unexpected("Block", &other)),
        }
    }

    /// Unblocks a user.
    ///
    /// # Errors
    /// `NOT_FOUND` (not blocked), or a connection error.
    pub async fn unblock(&self, user_id: u64) -> Result<(), ClientError> {
        match self
            .call(RequestKind::Unblock(pb::Unblock { user_id }))
            .await?
        {
            ResponseResult::Unblock(_) => Ok(()),
            other => Err(unexpected("Unblock", &other)),
        }
    }

    /// The users this user has blocked.
    ///
    /// # Errors
    /// A connection error.
    pub async fn blocked(&self) -> Result<Vec<pb::PublicProfile>, ClientError> {
        match self.call(RequestKind::Blocked(pb::ListBlocked {})).await? {
            ResponseResult::Blocked(l) => Ok(l.users),
            other => Err(unexpected("ListBlocked", &other)),
        }
    }

    /// Whether a friend (or oneself) is online.
    ///
    /// # Errors
    /// `FORBIDDEN` (not a friend), or a connection error.
    pub async fn presence(&self, user_id: u64) -> Result<bool, ClientError> {
        match self
            .call(RequestKind::Presence(pb::GetPresence { user_id }))
            .await?
        {
            ResponseResult::Presence(p) => Ok(p.online),
            other => Err(unexpected("GetPresence", &other)),
        }
    }
}
