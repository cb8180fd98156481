//! ListSessions (on its own task), and the upkeep that keeps the sessions of logged-in
//! connections alive and deletes expired ones.

use std::sync::Arc;
use std::time::Duration;

use feige_protocol::{pb, ResponseResult};
use feige_storage::account as store_account;
use feige_storage::SessionRecord;
use tokio_util::sync::CancellationToken;

use super::caller::{token_tag, Caller, Reply};
use crate::Shared;

/// How often the sessions that connections are logged in with are recorded as used (last
/// seen, expiry), at most.
const SESSION_TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Sessions touched per writer job, so that one job stays short.
const TOUCH_CHUNK: usize = 1024;

/// How often [`keep_sessions_alive`] runs: every minute, or four times per session lifetime
/// when that is shorter (tests use lifetimes of a second).
fn touch_interval(shared: &Shared) -> Duration {
    let quarter = Duration::from_millis((shared.config.session_ttl_ms() / 4).max(1) as u64);
    quarter.min(SESSION_TOUCH_EVERY)
}

/// Until `stop`: now and then records a use of every live session that a connection is logged
/// in with, so being logged in slides a token's expiry, with one write per session at most
/// each [`touch_interval`] and nothing added to a connection's own state; then deletes up to
/// 1,024 expired sessions. The live sessions are read from the store (a LAN server's few
/// thousand rows) and matched against the session map by token tag.
pub(crate) async fn keep_sessions_alive(shared: Arc<Shared>, stop: CancellationToken) {
    let every = touch_interval(&shared);
    let ttl = shared.config.session_ttl_ms();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let live = match shared.store.read(store_account::live_sessions).await {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the sessions to keep alive");
                continue;
            }
        };
        let online: Vec<u64> = live
            .into_iter()
            .filter(|(_, user, hash)| {
                let tag = token_tag(hash);
                let mut online = false;
                shared
                    .sessions
                    .for_each(*user, |p| online |= p.token_tag == tag);
                online
            })
            .map(|(id, _, _)| id)
            .collect();
        for chunk in online.chunks(TOUCH_CHUNK) {
            let ids = chunk.to_vec();
            let touched = shared
                .writer
                .call(move |c| store_account::touch_sessions(c, &ids, ttl))
                .await;
            if let Err(e) = touched {
                tracing::debug!(error = %e, "could not record the sessions' use");
                break;
            }
        }
        let purge = |c: &_| store_account::purge_expired_sessions(c, TOUCH_CHUNK as i64);
        if let Err(e) = shared.writer.call(purge).await {
            tracing::debug!(error = %e, "could not delete expired sessions");
        }
    }
}

/// Serves `ListSessions`: the caller's live sessions, with the ones logged in now marked.
pub(crate) async fn list_sessions(me: Caller) -> Reply {
    let user = me.user;
    let stored = me
        .shared
        .store
        .read(move |c| store_account::list_sessions(c, user))
        .await?;
    let sessions = stored.into_iter().map(|s| session_info(&me, s)).collect();
    Ok(ResponseResult::Sessions(pb::SessionList { sessions }))
}

fn session_info(me: &Caller, s: SessionRecord) -> pb::SessionInfo {
    let tag = token_tag(&s.token_hash);
    let mut online = false;
    me.shared
        .sessions
        .for_each(me.user, |p| online |= p.token_tag == tag);
    pb::SessionInfo {
        session_id: s.id,
        current: s.token_hash == me.token_hash,
        online,
        device: s.device,
        created_at_ms: s.created_at_ms.max(0) as u64,
        last_seen_ms: s.last_seen_ms.max(0) as u64,
        address: s.address,
        expires_at_ms: s.expires_at_ms.max(0) as u64,
    }
}
