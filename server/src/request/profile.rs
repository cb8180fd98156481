//! WhoAmI, UpdateProfile, ChangePassword, GetUser and SearchUsers: one's own profile and
//! finding others. Served on their own tasks; writes go through the storage writer, hashing and reads
//! run on blocking threads.

use feige_protocol::{pb, ErrorCode, PushKind, ResponseResult};
use feige_storage::social::{self, ProfileUpdate};

use super::caller::{token_tag, Caller, Reply};
use crate::account::{hash_password, verify_password};
use crate::convert;
use crate::error::RequestError;
use crate::validate::{self, NICKNAME, SIGNATURE};

const SEARCH_DEFAULT: u32 = 20;
const SEARCH_MAX: u32 = 100;
/// Deepest page of a user search.
const MAX_OFFSET: u32 = 10_000;

/// Serves `WhoAmI`: the caller's own profile.
pub(crate) async fn whoami(me: Caller) -> Reply {
    match me.shared.store.user_by_id(me.user).await? {
        Some(u) => Ok(ResponseResult::Profile(convert::profile(&u))),
        None => Err(RequestError::new(
            ErrorCode::NotFound,
            "user no longer exists",
        )),
    }
}

/// Serves `UpdateProfile`: validates the fields given and stores them (a verified phone or
/// e-mail may not be replaced: `VERIFICATION_REQUIRED`); when something
/// changed, pushes the new profile to the caller's other connections and, for nickname,
/// signature or avatar, to the friends.
pub(crate) async fn update(me: Caller, r: pb::UpdateProfile) -> Reply {
    let update = ProfileUpdate {
        nickname: r
            .nickname
            .as_deref()
            .map(|n| validate::text(&NICKNAME, n))
            .transpose()?,
        signature: r
            .signature
            .as_deref()
            .map(|s| validate::text(&SIGNATURE, s))
            .transpose()?,
        avatar: match r.avatar.as_deref() {
            Some(a) => Some(crate::files::avatar(&me.shared, me.user, a).await?),
            None => None,
        },
        phone: r.phone.as_deref().map(validate::phone).transpose()?,
        email: r.email.as_deref().map(validate::email).transpose()?,
    };
    let user = me.user;
    // A verified phone or e-mail is replaced only with a code (ChangeContact).
    let (before, after) = me
        .shared
        .writer
        .call(move |c| {
            let (phone, email) = (update.phone.as_deref(), update.email.as_deref());
            feige_storage::verified::check_profile_contacts(c, user, phone, email)?;
            social::update_profile(c, user, &update)
        })
        .await?;
    let public_changed = (&before.nickname, &before.signature, &before.avatar)
        != (&after.nickname, &after.signature, &after.avatar);
    let changed = public_changed || (&before.phone, &before.email) != (&after.phone, &after.email);
    if changed {
        announce(&me, public_changed).await;
    }
    Ok(ResponseResult::UpdateProfile(convert::profile(&after)))
}

/// Pushes the user's profile as stored now: the whole `Profile` to the caller's other
/// connections (`profile_updated`) and, when `public_changed`, the `PublicProfile` to the
/// friends (`user_updated`), never phone or e-mail. Announcements of one user take a lock in
/// turn and read the profile under it, so the last push anyone gets is the current profile.
/// The update is committed already: a failed read is logged, not reported.
async fn announce(me: &Caller, public_changed: bool) {
    let _order = me.shared.presence.profile_order(me.user).await;
    let user = me.user;
    let read = me
        .shared
        .store
        .read(move |c| {
            let record = social::own_profile(c, user)?;
            let friends = if public_changed {
                social::friend_ids(c, user)?
            } else {
                Vec::new()
            };
            Ok((record, friends))
        })
        .await;
    let (record, friends) = match read {
        Ok((Some(record), friends)) => (record, friends),
        Ok((None, _)) => return,
        Err(e) => {
            tracing::warn!(error = %e, user, "profile changed: cannot read it back to push it");
            return;
        }
    };
    me.push(user, PushKind::ProfileUpdated(convert::profile(&record)));
    if !friends.is_empty() {
        let public = convert::public(&(&record).into());
        me.push_to(&friends, PushKind::UserUpdated(public));
    }
}

/// Serves `ChangePassword`: checks the old password (an account without one, made by a phone
/// code, sets its first), stores the new one, revokes every other session token of the user
/// and closes their connections.
pub(crate) async fn change_password(me: Caller, r: pb::ChangePassword) -> Reply {
    validate::new_password("new password", &r.new_password)?;
    let Some(user) = me.shared.store.user_by_id(me.user).await? else {
        return Err(RequestError::new(
            ErrorCode::NotFound,
            "user no longer exists",
        ));
    };
    let shared = me.shared.clone();
    let iterations = shared.config.pbkdf2_iterations;
    let hashed = tokio::task::spawn_blocking(move || {
        // An account made by a phone code has no password yet: its session is enough.
        let has_password = !user.password_hash.is_empty();
        if has_password && !verify_password(&user.salt, &user.password_hash, &r.old_password) {
            return Ok(None);
        }
        hash_password(&shared.rng, iterations, &r.new_password).map(Some)
    })
    .await
    .map_err(|_| RequestError::new(ErrorCode::Internal, "hashing worker failed"))?
    .map_err(|_| RequestError::new(ErrorCode::Internal, "random source failed"))?;
    let Some((salt, hash)) = hashed else {
        return Err(RequestError::new(
            ErrorCode::BadCredentials,
            "the old password is wrong",
        ));
    };
    let (uid, keep) = (me.user, me.token_hash.clone());
    let revoked = me
        .shared
        .writer
        .call(move |c| social::set_password(c, uid, &salt, &hash, &keep))
        .await?;
    let tag = token_tag(&me.token_hash);
    me.shared.sessions.for_each(me.user, |p| {
        if p.token_tag != tag {
            p.control().kick(ErrorCode::InvalidToken);
        }
    });
    tracing::info!(user = me.user, revoked, "password changed");
    Ok(ResponseResult::ChangePassword(pb::PasswordChanged {
        sessions_revoked: revoked,
    }))
}

/// Serves `GetUser`: a user's public profile, by id or username.
pub(crate) async fn get_user(me: Caller, r: pb::GetUser) -> Reply {
    let store = &me.shared.store;
    let found = match (validate::id("user_id", r.user_id)?, r.username.trim()) {
        (0, "") => return Err(RequestError::invalid("set user_id or username")),
        (id, "") => store.user_by_id(id).await?,
        (0, name) => store.user_by_name(name).await?,
        _ => {
            return Err(RequestError::invalid(
                "set only one of user_id and username",
            ))
        }
    };
    match found {
        Some(u) => Ok(ResponseResult::GetUser(convert::public(&(&u).into()))),
        None => Err(RequestError::new(ErrorCode::NotFound, "no such user")),
    }
}

/// Serves `SearchUsers`: a page of users whose username or nickname contains the query.
pub(crate) async fn search(me: Caller, r: pb::SearchUsers) -> Reply {
    let query = validate::user_query(&r.query)?;
    if r.offset > MAX_OFFSET {
        return Err(RequestError::invalid("offset larger than 10000"));
    }
    let limit = validate::page_limit(r.limit, SEARCH_DEFAULT, SEARCH_MAX);
    let (user, offset) = (me.user, r.offset as usize);
    let (users, has_more) = me
        .shared
        .store
        .read(move |c| social::search_users(c, user, &query, limit, offset))
        .await?;
    Ok(ResponseResult::SearchUsers(pb::UserList {
        users: users.iter().map(convert::public).collect(),
        has_more,
    }))
}
