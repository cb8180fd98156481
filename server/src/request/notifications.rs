//! ListNotifications and MarkNotificationRead: the caller's system notifications
//! ([`crate::notices`] posts them).

use feige_protocol::{pb, ResponseResult};
use feige_storage::notifications as store;

use super::caller::{Caller, Reply};
use crate::validate;

/// Notifications per page unless the client asks for fewer.
const PAGE_DEFAULT: usize = 50;
/// Most notifications per page.
const PAGE_MAX: usize = 200;

/// Serves `ListNotifications`: a page of the caller's notifications after `after_id`, oldest
/// first, with the unread count.
pub(crate) async fn list(me: Caller, r: pb::ListNotifications) -> Reply {
    let after = validate::id("after_id", r.after_id)?;
    let limit = match r.limit {
        0 => PAGE_DEFAULT,
        n => (n as usize).min(PAGE_MAX),
    };
    let user = me.user;
    let (list, has_more, unread) = me
        .shared
        .store
        .read(move |c| store::list(c, user, after, limit))
        .await?;
    Ok(ResponseResult::Notifications(pb::NotificationList {
        notifications: list.iter().map(crate::notices::to_wire).collect(),
        has_more,
        unread: u32::try_from(unread).unwrap_or(u32::MAX),
    }))
}

/// Serves `MarkNotificationRead`: one notification (`id`) or all of them (`all`) read.
pub(crate) async fn mark_read(me: Caller, r: pb::MarkNotificationRead) -> Reply {
    let id = if r.all {
        0
    } else if r.id == 0 {
        return Err(crate::error::RequestError::invalid(
            "give the notification's id, or all",
        ));
    } else {
        validate::id("id", r.id)?
    };
    let user = me.user;
    let (marked, unread) = me
        .shared
        .writer
        .call(move |c| store::mark_read(c, user, id))
        .await?;
    Ok(ResponseResult::NotificationRead(pb::NotificationReadOk {
        marked: u32::try_from(marked).unwrap_or(u32::MAX),
        unread: u32::try_from(unread).unwrap_or(u32::MAX),
    }))
}
