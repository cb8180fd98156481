//! `feige notifications` and `feige notification-read`: the user's system notifications.

use feige_client::{pb, Event};
use feige_tools::social::Out;
use serde_json::json;

use super::{with_client, Ctx};

/// `feige notifications`: a page of notifications, oldest first, and the unread count.
pub(crate) async fn list(ctx: &Ctx, after: u64, limit: Option<u32>) -> anyhow::Result<()> {
    let page = with_client(ctx, |c| async move {
        Ok(c.notifications(after, limit.unwrap_or(0)).await?)
    })
    .await?;
    for n in &page.notifications {
        ctx.out(&line(n, "notification"));
    }
    let unread = page.unread;
    ctx.print(&json!({ "type": "unread", "unread": unread }), || {
        format!("{unread} unread")
    });
    if page.has_more && !ctx.cli.json {
        if let Some(last) = page.notifications.last() {
            eprintln!("more notifications: --after {}", last.id);
        }
    }
    Ok(())
}

/// `feige notification-read ID` (or `--all`): marks notifications read.
pub(crate) async fn read(ctx: &Ctx, id: Option<u64>) -> anyhow::Result<()> {
    let ok = with_client(ctx, |c| async move {
        Ok(c.mark_notification_read(id.unwrap_or(0)).await?)
    })
    .await?;
    let (marked, unread) = (ok.marked, ok.unread);
    ctx.print(
        &json!({ "type": "notification_read", "marked": marked, "unread": unread }),
        || format!("marked {marked} read; {unread} unread"),
    );
    Ok(())
}

/// A notification pushed while `listen` runs; `None` for other events.
pub(crate) fn event(e: &Event) -> Option<Out> {
    match e {
        Event::Notification(n) => Some(line(n, "notification_pushed")),
        _ => None,
    }
}

fn line(n: &pb::Notification, kind: &str) -> Out {
    let from = if n.from == 0 {
        "system".to_owned()
    } else {
        format!("user {}", n.from)
    };
    let mark = if n.read { " " } else { "*" };
    let title = if n.title.is_empty() {
        String::new()
    } else {
        format!("{}: ", n.title)
    };
    Out {
        json: json!({
            "type": kind,
            "id": n.id.to_string(),
            "title": n.title,
            "body": n.body,
            "from": n.from.to_string(),
            "created_at_ms": n.created_at_ms,
            "read": n.read,
        }),
        text: format!("{mark}[{}] {from}: {title}{}", n.id, n.body),
    }
}
