//! Groups: create, profile, invitations, members, roles, cards, mutes, dismiss, and group
//! messages with @mentions. A group's id is its conversation's id: its messages come as
//! [`crate::Event::Message`] like any other (system notices with kind SYSTEM).

use feige_protocol::{pb, RequestKind, ResponseResult};

use super::Client;
use crate::link::unexpected;
use crate::ClientError;

macro_rules! call_as {
    ($self:ident, $kind:ident($req:expr), $res:ident) => {
        match $self.call(RequestKind::$kind($req)).await? {
            ResponseResult::$res(v) => Ok(v),
            other => Err(unexpected(stringify!($kind), &other)),
        }
    };
}

impl Client {
    /// Creates a group named `name` owned by the user, with `members` (friends of the user).
    ///
    /// # Errors
    /// `NOT_FRIENDS`, `NOT_FOUND`, `GROUP_FULL`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn group_create(
        &self,
        name: &str,
        members: &[u64],
        join_approval: bool,
    ) -> Result<pb::GroupInfo, ClientError> {
        let r = pb::CreateGroup {
            name: name.to_owned(),
            members: members.to_vec(),
            join_approval,
        };
        call_as!(self, GroupCreate(r), GroupCreate)
    }

    /// A group's profile (members only).
    ///
    /// # Errors
    /// `NOT_FOUND`, `NOT_A_MEMBER`, or a connection error.
    pub async fn group_info(&self, group_id: u64) -> Result<pb::GroupInfo, ClientError> {
        call_as!(self, GroupInfo(pb::GetGroup { group_id }), GroupInfo)
    }

    /// Changes a group's profile (owner and admins); unset fields stay.
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_A_MEMBER`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn group_update(
        &self,
        update: pb::UpdateGroup,
    ) -> Result<pb::GroupInfo, ClientError> {
        call_as!(self, GroupUpdate(update), GroupUpdate)
    }

    /// Invites friends of the user into a group: they join, or wait for approval.
    ///
    /// # Errors
    /// `NOT_FRIENDS`, `NOT_A_MEMBER`, `GROUP_FULL`, or a connection error.
    pub async fn group_invite(
        &self,
        group_id: u64,
        users: &[u64],
    ) -> Result<pb::GroupInviteResult, ClientError> {
        let r = pb::InviteToGroup {
            group_id,
            users: users.to_vec(),
        };
        call_as!(self, GroupInvite(r), GroupInvite)
    }

    /// Removes a member (owner: anyone; admins: plain members).
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_A_MEMBER`, or a connection error.
    pub async fn group_remove(&self, group_id: u64, user_id: u64) -> Result<(), ClientError> {
        let r = pb::RemoveFromGroup { group_id, user_id };
        call_as!(self, GroupRemove(r), GroupRemove).map(drop)
    }

    /// Leaves a group (the owner must transfer or dismiss it instead).
    ///
    /// # Errors
    /// `FORBIDDEN` (the owner), `NOT_A_MEMBER`, or a connection error.
    pub async fn group_leave(&self, group_id: u64) -> Result<(), ClientError> {
        call_as!(self, GroupLeave(pb::LeaveGroup { group_id }), GroupLeave).map(drop)
    }

    /// Dismisses a group (the owner only).
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_A_MEMBER`, or a connection error.
    pub async fn group_dismiss(&self, group_id: u64) -> Result<(), ClientError> {
        call_as!(
            self,
            GroupDismiss(pb::DismissGroup { group_id }),
            GroupDismiss
        )
        .map(drop)
    }

    /// Makes another member the owner (the owner only).
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_A_MEMBER`, or a connection error.
    pub async fn group_transfer(&self, group_id: u64, user_id: u64) -> Result<(), ClientError> {
        let r = pb::TransferGroup { group_id, user_id };
        call_as!(self, GroupTransfer(r), GroupTransfer).map(drop)
    }

    /// Makes a member an admin or a plain member (the owner only).
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_A_MEMBER`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn group_set_role(
        &self,
        group_id: u64,
        user_id: u64,
        role: pb::GroupRole,
    ) -> Result<(), ClientError> {
        let r = pb::SetGroupRole {
            group_id,
            user_id,
            role: role as i32,
        };
        call_as!(self, GroupSetRole(r), GroupSetRole).map(drop)
    }

    /// One page of a group's members (by user id, after `after_user`; `limit` 0 = 100).
    ///
    /// # Errors
    /// `NOT_A_MEMBER`, `NOT_FOUND`, or a connection error.
    pub async fn group_members(
        &self,
        group_id: u64,
        limit: u32,
        after_user: u64,
    ) -> Result<pb::GroupMemberList, ClientError> {
        let r = pb::ListGroupMembers {
            group_id,
            limit,
            after_user,
        };
        call_as!(self, GroupMembers(r), GroupMembers)
    }

    /// Sets the user's card name in a group ("" clears it).
    ///
    /// # Errors
    /// `NOT_A_MEMBER`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn group_set_card(&self, group_id: u64, card: &str) -> Result<(), ClientError> {
        let r = pb::SetGroupCard {
            group_id,
            card: card.to_owned(),
        };
        call_as!(self, GroupSetCard(r), GroupSetCard).map(drop)
    }

    /// Mutes a member for `seconds` (0 lifts the mute).
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_A_MEMBER`, `INVALID_ARGUMENT`, or a connection error.
    pub async fn group_mute(
        &self,
        group_id: u64,
        user_id: u64,
        seconds: u64,
    ) -> Result<(), ClientError> {
        let r = pb::MuteGroupMember {
            group_id,
            user_id,
            seconds,
        };
        call_as!(self, GroupMute(r), GroupMute).map(drop)
    }

    /// Mutes every plain member of a group, or lifts it (owner and admins).
    ///
    /// # Errors
    /// `FORBIDDEN`, `NOT_A_MEMBER`, or a connection error.
    pub async fn group_mute_all(&self, group_id: u64, mute: bool) -> Result<(), ClientError> {
        call_as!(
            self,
            GroupMuteAll(pb::MuteGroup { group_id, mute }),
            GroupMuteAll
        )
        .map(drop)
    }

    /// The user's groups.
    ///
    /// # Errors
    /// A connection error.
    pub async fn groups(&self) -> Result<Vec<pb::GroupInfo>, ClientError> {
        call_as!(self, Groups(pb::ListGroups {}), Groups).map(|l| l.groups)
    }

    /// Pending invitations: to the user, and those the user may approve.
    ///
    /// # Errors
    /// A connection error.
    pub async fn group_invites(&self) -> Result<Vec<pb::GroupInvitation>, ClientError> {
        call_as!(self, GroupInvites(pb::ListGroupInvites {}), GroupInvites).map(|l| l.invites)
    }

    /// Answers a pending invitation of `user_id`: its invitee declines (`accept` false); the
    /// owner or an admin approves or rejects it.
    ///
    /// # Errors
    /// `NOT_FOUND` (no such invitation), `FORBIDDEN`, `GROUP_FULL`, or a connection error.
    pub async fn group_answer_invite(
        &self,
        group_id: u64,
        user_id: u64,
        accept: bool,
    ) -> Result<(), ClientError> {
        let r = pb::AnswerGroupInvite {
            group_id,
            user_id,
            accept,
        };
        call_as!(self, GroupAnswerInvite(r), GroupAnswerInvite).map(drop)
    }

    /// Sends a text message to a group, mentioning `mentions` (and everyone with
    /// `mention_all`: owner and admins only); see [`Client::send`].
    ///
    /// # Errors
    /// `NOT_A_MEMBER`, `MUTED` (with the time left), `FORBIDDEN` (@all by a plain member),
    /// `INVALID_ARGUMENT` (a mentioned user is not a member), as [`Client::send`].
    pub async fn send_group_text(
        &self,
        group_id: u64,
        text: &str,
        mentions: &[u64],
        mention_all: bool,
    ) -> Result<pb::SendOk, ClientError> {
        self.send(pb::SendMessage {
            conversation_id: group_id,
            text: text.to_owned(),
            kind: pb::MessageKind::Text as i32,
            mentions: mentions.to_vec(),
            mention_all,
            ..Default::default()
        })
        .await
    }
}
