//! The Feige group that `fanout` posts to: account 0 befriends every other bench account
//! (groups take friends) and creates a group of them all. Friendships already made by an
//! earlier run are kept; each run makes a new group.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use feige_protocol::{pb, RequestKind, ResponseResult};
use tokio::sync::Semaphore;

use super::accounts::Account;
use super::wire::{feige_call, feige_resume};

/// Requests in flight while befriending.
const CONCURRENCY: usize = 16;

/// Makes account 0 a friend of every other account, then a group of all of them; returns the
/// group's conversation id.
///
/// # Errors
/// A connection or a request fails.
pub async fn make(addr: SocketAddr, accounts: &[Account]) -> anyhow::Result<u64> {
    let Some((owner, others)) = accounts.split_first() else {
        bail!("a group needs accounts");
    };
    let owner_token = owner.token.clone();
    let sem = Arc::new(Semaphore::new(CONCURRENCY));
    let mut joins = Vec::with_capacity(others.len());
    for (i, member) in others.iter().enumerate() {
        let (sem, owner_token, member) = (sem.clone(), owner_token.clone(), member.clone());
        joins.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            befriend(addr, &owner_token, &member)
                .await
                .with_context(|| format!("befriending account {}", i + 1))
        }));
    }
    for j in joins {
        j.await??;
    }
    let (mut s, mut buf) = feige_resume(addr, None, &owner.token).await?;
    let create = pb::CreateGroup {
        name: "fanout".into(),
        members: others.iter().map(|a| a.user_id).collect(),
        join_approval: false,
    };
    match feige_call(&mut s, &mut buf, 2, RequestKind::GroupCreate(create)).await? {
        ResponseResult::GroupCreate(g) => Ok(g.conversation_id),
        other => bail!("unexpected answer to CreateGroup: {other:?}"),
    }
}

/// Makes `owner` and `member` friends: a request from the owner, accepted by the member.
async fn befriend(addr: SocketAddr, owner_token: &[u8], member: &Account) -> anyhow::Result<()> {
    let (mut s, mut buf) = feige_resume(addr, None, owner_token).await?;
    let ask = pb::SendFriendRequest {
        to_user: member.user_id,
        message: String::new(),
    };
    let sent = match feige_call(&mut s, &mut buf, 2, RequestKind::FriendRequest(ask)).await {
        Ok(ResponseResult::FriendRequest(sent)) => sent,
        Err(e) if e.to_string().contains("ALREADY_FRIENDS") => return Ok(()),
        Ok(other) => bail!("unexpected answer to a friend request: {other:?}"),
        Err(e) => return Err(e),
    };
    if sent.became_friends {
        return Ok(());
    }
    let (mut m, mut mbuf) = feige_resume(addr, None, &member.token).await?;
    let answer = pb::RespondFriendRequest {
        request_id: sent.request_id,
        accept: true,
    };
    match feige_call(&mut m, &mut mbuf, 2, RequestKind::FriendRespond(answer)).await? {
        ResponseResult::FriendRespond(_) => Ok(()),
        other => bail!("unexpected answer to accepting a friend request: {other:?}"),
    }
}
