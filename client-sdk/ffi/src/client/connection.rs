//! The connection task: keeps a Rust client connected and forwards its events to the queue.

use std::sync::Arc;

use feige_client::{Backoff, Client, ConnState, ErrorCode, Event};
use serde_json::json;
use tokio::time::Instant;

use super::shared::Shared;
use crate::json;
use crate::queue::FeigeEvent;

/// Keeps a client connected until shutdown: connects, forwards its events to the queue, and
/// when it closes for good (lost while logged out, or its session was revoked) connects a new
/// one after a backoff.
pub(super) async fn run_connection(shared: Arc<Shared>) {
    tokio::select! {
        () = connection_loop(&shared) => {}
        () = shared.cancel.cancelled() => {}
    }
    // A client connected while shutdown was taking the previous one is dropped (and closed)
    // here.
    shared.current.send_replace(None);
}

/// Keeps a Rust client connected, reconnecting with [`Backoff`] a client that lost its
/// connection while logged out, or could not connect. (While logged in, the Rust client
/// reconnects and resumes by itself.)
async fn connection_loop(shared: &Shared) {
    let mut backoff = Backoff::with(shared.config.backoff);
    let mut failure = None;
    loop {
        shared.push_state(ConnState::Connecting);
        match Client::connect(shared.config.clone()).await {
            Ok((client, mut events)) => {
                let since = Instant::now();
                shared.current.send_replace(Some(client));
                let mut first = true;
                while let Some(event) = events.recv().await {
                    // A fresh client's first event repeats the "connecting" queued above.
                    let repeat = first && event == Event::State(ConnState::Connecting);
                    first = false;
                    if !repeat {
                        forward(shared, event).await;
                    }
                }
                shared.current.send_replace(None);
                // The next client starts logged out.
                shared.session_state(None, "connection_lost", json!({}));
                backoff.connection_ended(since.elapsed());
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                failure = Some(e.to_string());
            }
        }
        let delay = backoff.next_delay();
        // Why the connection could not be made (a refused TLS handshake, say), for the
        // application to show.
        let mut state = json::state(ConnState::Disconnected { retry_in: delay });
        if let Some(why) = failure.take() {
            state["error"] = why.into();
        }
        shared.push_state_json(state);
        // A reconnect_now made since the last attempt began ends this wait at once (its
        // permit is kept).
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.reconnect.notified() => {}
        }
    }
}

/// Queues one event of the Rust client.
async fn forward(shared: &Shared, event: Event) {
    match event {
        Event::Message(m) => {
            let push = FeigeEvent::push(&json::message_push(&m));
            shared.queue.push_bounded(push).await;
        }
        Event::Kicked { code, reason } => {
            shared
                .queue
                .push(FeigeEvent::push(&json::kicked(code, &reason)));
            // These end the session: the client will not resume it.
            if matches!(
                code,
                ErrorCode::InvalidToken | ErrorCode::AccountDisabled | ErrorCode::AddressBanned
            ) {
                let code = json::code_name(code);
                shared.session_state(None, "kicked", json!({ "code": code }));
            }
        }
        Event::State(s) => shared.push_state(s),
        Event::FriendRequest(r) => social(shared, "friend_request", json::friend_request(&r)).await,
        Event::FriendResponse(r) => {
            social(shared, "friend_response", json::friend_response(&r)).await;
        }
        Event::FriendAdded(f) => social(shared, "friend_added", json::friend(&f)).await,
        Event::FriendRemoved { user_id } => {
            social(shared, "friend_removed", json::friend_removed(user_id)).await;
        }
        Event::Presence { user_id, online } => {
            social(shared, "presence", json::presence(user_id, online)).await;
        }
        Event::ReadPosition(p) => social(shared, "read_position", json::read_position(&p)).await,
        Event::FriendRequestAnswered(r) => {
            social(shared, "friend_request_answered", json::friend_response(&r)).await;
        }
        Event::FriendUpdated(f) => social(shared, "friend_updated", json::friend(&f)).await,
        Event::BlockChanged { user, blocked } => {
            social(shared, "block_changed", json::block_changed(&user, blocked)).await;
        }
        Event::ProfileUpdated(p) => social(shared, "profile_updated", json::profile(&p)).await,
        Event::UserUpdated(u) => social(shared, "user_updated", json::user(&u)).await,
        Event::GroupUpdated(g) => social(shared, "group_updated", json::group(&g)).await,
        Event::GroupRemoved(r) => social(shared, "group_removed", json::group_removed(&r)).await,
        Event::GroupInvitation(i) => {
            social(shared, "group_invitation", json::group_invitation(&i)).await;
        }
        Event::RoomMessage(m) => {
            let v = json::room_message(&m);
            social(shared, "room_message", v).await;
        }
        Event::RedPacketGrabbed(g) => {
            let v = json::grabbed(&g);
            social(shared, "red_packet_grabbed", v).await;
        }
        Event::ReadReceipt(r) => social(shared, "read_receipt", json::read_receipt(&r)).await,
        Event::MessageRecalled(r) => {
            social(shared, "message_recalled", json::message_recalled(&r)).await;
        }
        Event::Transcribed(t) => {
            social(shared, "transcribed", json::transcript(&t)).await;
        }
        Event::FileOfferAnswered(o) => {
            social(shared, "file_offer_answered", json::file_offer(&o)).await;
        }
        Event::Notification(n) => social(shared, "notification", json::notification(&n)).await,
        // An event kind the C SDK does not map yet is not queued.
        _ => {}
    }
}

/// Queues a social push (`{"type": kind, ...}`), waiting for room like a message.
async fn social(shared: &Shared, kind: &str, fields: serde_json::Value) {
    let push = FeigeEvent::push(&json::typed(kind, fields));
    tokio::select! {
        () = shared.queue.push_bounded(push) => {}
        () = shared.cancel.cancelled() => {}
    }
}
