//! Friend groups (ListFriendGroups, SetFriendGroup) and friend suggestions
//! (GetFriendSuggestions), each served on its own task: reads from the reader pool, the
//! group through the storage writer.

use feige_protocol::{pb, PushKind, ResponseResult};
use feige_storage::contacts;

use super::caller::{Caller, Reply};
use crate::convert;
use crate::validate::{self, page_limit, Field};

/// A friend group's name: up to 32 characters ("" = the default group).
const FRIEND_GROUP: Field = Field {
    name: "group",
    min_chars: 0,
    max_chars: 32,
    max_bytes: 128,
    multiline: false,
    name_like: true,
};
const SUGGESTIONS_DEFAULT: u32 = 20;
const SUGGESTIONS_MAX: u32 = 100;

/// Serves `ListFriendGroups`: the caller's friends by group.
pub(crate) async fn friend_groups(me: Caller) -> Reply {
    let user = me.user;
    let groups = me
        .shared
        .store
        .read(move |c| contacts::friend_groups(c, user))
        .await?;
    Ok(ResponseResult::FriendGroups(pb::FriendGroupList {
        groups: groups
            .iter()
            .map(|g| pb::FriendGroup {
                name: g.name.clone(),
                friends: g
                    .friends
                    .iter()
                    .map(|f| convert::friend(f, me.online(f.user.id)))
                    .collect(),
            })
            .collect(),
    }))
}

/// Serves `SetFriendGroup`; the caller's other connections get `friend_updated`.
pub(crate) async fn set_friend_group(me: Caller, r: pb::SetFriendGroup) -> Reply {
    let other = validate::required_id("user_id", r.user_id)?;
    let group = validate::text(&FRIEND_GROUP, &r.group)?;
    let user = me.user;
    let f = me
        .shared
        .writer
        .call(move |c| contacts::set_friend_group(c, user, other, &group))
        .await?;
    let f = convert::friend(&f, me.online(other));
    me.push(me.user, PushKind::FriendUpdated(f.clone()));
    Ok(ResponseResult::FriendGroupSet(f))
}

/// Serves `GetFriendSuggestions`: people who share friends or groups with the caller.
pub(crate) async fn suggestions(me: Caller, r: pb::GetFriendSuggestions) -> Reply {
    let limit = page_limit(r.limit, SUGGESTIONS_DEFAULT, SUGGESTIONS_MAX);
    let user = me.user;
    let list = me
        .shared
        .store
        .read(move |c| contacts::suggestions(c, user, limit))
        .await?;
    Ok(ResponseResult::FriendSuggestions(
        pb::FriendSuggestionList {
            suggestions: list
                .iter()
                .map(|s| pb::FriendSuggestion {
                    user: Some(convert::public(&s.user)),
                    mutual_friends: s.mutual_friends,
                    mutual_groups: s.mutual_groups,
                })
                .collect(),
        },
    ))
}
