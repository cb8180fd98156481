//! System notifications: an admin's notice to one user, a group's members or everyone, and
//! the HTTP API's notice to one user. Stored through the writer, then pushed (`notification`)
//! to the recipients' live connections; `ListNotifications` shows them with read state.

use std::sync::Arc;

use feige_protocol::{frame, pb, Envelope, ErrorCode, PushKind};
use feige_storage::notifications::{self as store, Audience, NotificationRecord};
use feige_storage::UserId;

use crate::error::RequestError;
use crate::{validate, Shared};

/// Who a notice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeTo {
    /// One user.
    User(UserId),
    /// The members of a group (as it is now).
    Group(u64),
    /// Every user (one stored row; later users do not see it).
    Everyone,
}

/// A stored notice: its id (for one user, or everyone; a group's first member's) and how
/// many users it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Posted {
    pub id: u64,
    pub recipients: u64,
}

/// Stores a notice from `from` (0: the system or an admin) and pushes it to those online.
///
/// # Errors
/// `INVALID_ARGUMENT` / `TOO_LARGE` for the title or body, `NOT_FOUND` for an unknown user or
/// group; storage errors.
pub(crate) async fn post(
    shared: &Arc<Shared>,
    to: NoticeTo,
    from: UserId,
    title: &str,
    body: &str,
) -> Result<Posted, RequestError> {
    let title = validate::text(&validate::NOTICE_TITLE, title)?;
    validate::message_text(body, shared.config.max_text_len)?;
    let audience = match to {
        NoticeTo::User(u) => Audience::Users(vec![validate::id("user_id", u)?]),
        NoticeTo::Everyone => Audience::Everyone,
        NoticeTo::Group(g) => {
            let g = validate::id("group_id", g)?;
            let members = shared
                .store
                .read(move |c| feige_storage::admin::group_member_ids(c, g))
                .await?;
            match members {
                Some(m) => Audience::Users(m),
                None => return Err(RequestError::new(ErrorCode::NotFound, "no such group")),
            }
        }
    };
    let body = body.to_owned();
    let everyone = audience == Audience::Everyone;
    let (record, rows) = shared
        .writer
        .call(move |c| store::post(c, &audience, from, &title, &body))
        .await?;
    let recipients = if everyone {
        push_to_everyone(shared, &record);
        shared.store.read(feige_storage::admin::count_users).await?
    } else {
        for (user, id) in &rows {
            let n = NotificationRecord {
                id: *id,
                ..record.clone()
            };
            let frame = encode(&n);
            shared.sessions.for_each(*user, |p| p.deliver(&frame));
        }
        rows.len() as u64
    };
    tracing::info!(id = record.id, recipients, "notice posted");
    Ok(Posted {
        id: record.id,
        recipients,
    })
}

fn push_to_everyone(shared: &Shared, n: &NotificationRecord) {
    let frame = encode(n);
    shared.sessions.for_each_peer(|p| p.deliver(&frame));
}

fn encode(n: &NotificationRecord) -> bytes::Bytes {
    frame::encode_to_bytes(&Envelope::push(PushKind::Notification(to_wire(n))))
}

/// A stored notification as the wire carries it.
pub(crate) fn to_wire(n: &NotificationRecord) -> pb::Notification {
    pb::Notification {
        id: n.id,
        title: n.title.clone(),
        body: n.body.clone(),
        from: n.from,
        created_at_ms: n.created_at_ms,
        read: n.read,
    }
}
