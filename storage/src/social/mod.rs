//! The social graph: profiles, friends, friend requests, blocks, who may message whom, the
//! conversation list and per-user read positions, one file per concern.
//!
//! Reads take any connection (through [`crate::Store::read`]). Writes run in the writer's
//! transaction: those that change friendships or blocks through [`crate::Writer::call_graph`],
//! so the writer's cache of who may message whom (`Gate`) is dropped in the same order as
//! the messages it judges; the others through [`crate::Writer::call`].

mod blocks;
mod conversations;
mod friends;
mod gate;
mod profile;
mod read_position;
mod requests;
#[cfg(test)]
mod tests;
mod user_search;

pub use blocks::{block, blocked, blocks, unblock};
pub(crate) use conversations::conversations;
pub use conversations::{ConversationPage, ConversationRecord};
pub use friends::{
    delete_friend, friend, friend_ids, friends, is_friend, set_remark, FriendRecord,
};
pub(crate) use gate::Gate;
pub use profile::{
    own_profile, public_user, set_password, update_profile, ProfileUpdate, PublicUser,
};
pub(crate) use read_position::mark_read;
pub use read_position::ReadPositionRecord;
pub use requests::{
    friend_requests, prune_requests, respond_request, send_request, FriendRequestRecord,
    RequestOutcome, Responded,
};
pub use user_search::search_users;

pub use crate::options::DirectPolicy;
pub use crate::text::search_key;
