//! Presence: a user's friends get a `Push{presence}` when the user's first connection logs in
//! and when the last one goes (closed, dropped, idle timeout, kicked, logged out). Nobody else
//! learns anything: the push goes to friends only, and `GetPresence` answers friends only.
//!
//! Announcements run on their own task (the friend list is a storage read). Two announcements
//! of one user may race (a last device leaving while a first one arrives); each takes a lock
//! striped by user id and sends the state the session map holds *then*, so the last push a
//! friend gets is the current state.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use feige_protocol::{frame, pb, Envelope, PushKind};
use feige_storage::{social, UserId};

use crate::Shared;

const STRIPES: usize = 64;

/// Per-user ordering of presence announcements, and of profile announcements
/// (`request::profile`), which hold theirs across a storage read.
pub(crate) struct Presence {
    stripes: Box<[Mutex<()>]>,
    profiles: Box<[tokio::sync::Mutex<()>]>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            profiles: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl Presence {
    fn lock(&self, user: UserId) -> MutexGuard<'_, ()> {
        self.stripes[(user % STRIPES as u64) as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Taken while a user's profile is read and pushed to friends and devices.
    pub(crate) async fn profile_order(&self, user: UserId) -> tokio::sync::MutexGuard<'_, ()> {
        self.profiles[(user % STRIPES as u64) as usize].lock().await
    }
}

/// Tells `user`'s online friends, in the background, whether `user` is online now.
pub(crate) fn changed(shared: &Arc<Shared>, user: UserId) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let friends = match shared
            .store
            .read(move |c| social::friend_ids(c, user))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, user, "presence: cannot read friends");
                return;
            }
        };
        if friends.is_empty() {
            return;
        }
        let _order = shared.presence.lock(user);
        let online = shared.sessions.is_online(user);
        let push = frame::encode_to_bytes(&Envelope::push(PushKind::Presence(pb::Presence {
            user_id: user,
            online,
        })));
        for friend in friends {
            shared.sessions.for_each(friend, |p| p.deliver(&push));
        }
    });
}
