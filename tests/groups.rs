//! Groups through the Rust client SDK: create, invite (with and without approval), remove,
//! leave, transfer, roles, dismiss, profile and announcement pushes, cards, the member list,
//! mutes, @mentions, joined_seq and the member limit (the fan-out to 1,000 online members is in
//! groups_fanout.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::{Client, ClientError, Event, Events};
use feige_protocol::{pb, ErrorCode};
use feige_tests::sdk::{
    befriend, code, login, messages, next_event, next_message, no_message_within, register, uid,
};
use feige_tests::TestServer;

const SYSTEM: i32 = pb::MessageKind::System as i32;

/// Logs in fresh users named `names` (registered here) and returns their clients.
async fn users(addr: &str, names: &[&str]) -> Vec<(Client, Events)> {
    let mut out = Vec::new();
    for n in names {
        register(addr, n).await;
        out.push(login(addr, n, n).await);
    }
    out
}

async fn group_updated(ev: &mut Events, group: u64) -> pb::GroupInfo {
    next_event(ev, |e| match e {
        Event::GroupUpdated(g) if g.group_id == group => Some(g),
        _ => None,
    })
    .await
}

async fn group_removed(ev: &mut Events, group: u64) -> pb::GroupRemoved {
    next_event(ev, |e| match e {
        Event::GroupRemoved(g) if g.group_id == group => Some(g),
        _ => None,
    })
    .await
}

/// The next message event that is a system notice; panics on an ordinary message.
async fn notice(ev: &mut Events) -> pb::Message {
    let m = next_message(ev).await;
    assert_eq!(m.kind, SYSTEM, "expected a system notice, got {m:?}");
    m
}

async fn hist(c: &Client, group: u64) -> Result<Vec<pb::Message>, ClientError> {
    c.history(pb::History {
        conversation_id: group,
        ..Default::default()
    })
    .await
}

/// A new member's first notice and group profile, in whichever order they come (the notice
/// of an unknown conversation waits for a sync).
async fn joined(ev: &mut Events, group: u64) -> (pb::Message, pb::GroupInfo) {
    let (mut notice, mut info) = (None, None);
    while notice.is_none() || info.is_none() {
        let e = next_event(ev, |e| match e {
            Event::Message(m) if m.conversation_id == group => Some(Ok(m)),
            Event::GroupUpdated(g) if g.group_id == group => Some(Err(g)),
            _ => None,
        })
        .await;
        match e {
            Ok(m) => notice = Some(m),
            Err(g) => info = Some(g),
        }
    }
    (notice.unwrap(), info.unwrap())
}

fn muted_for(r: Result<pb::SendOk, ClientError>) -> u64 {
    match r {
        Err(ClientError::Server {
            code: ErrorCode::Muted,
            retry_after_ms,
            ..
        }) => retry_after_ms,
        other => panic!("expected MUTED, got {other:?}"),
    }
}

#[tokio::test]
async fn create_talk_invite_remove_leave_transfer_dismiss() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut u = users(&addr, &["alice", "bob", "carol", "dave"]).await;
    let (dave, dave_ev) = u.pop().unwrap();
    let (carol, mut carol_ev) = u.pop().unwrap();
    let (bob, mut bob_ev) = u.pop().unwrap();
    let (alice, mut alice_ev) = u.pop().unwrap();
    let (a, b, c, d) = (uid(&alice), uid(&bob), uid(&carol), uid(&dave));
    befriend(&alice, &bob).await;
    befriend(&alice, &carol).await;

    // Only friends; a name is required.
    assert_eq!(
        code(alice.group_create("g", &[d], false).await),
        ErrorCode::NotFriends
    );
    assert_eq!(
        code(alice.group_create("  ", &[b], false).await),
        ErrorCode::InvalidArgument
    );
    let g = alice.group_create("Team", &[b, b], false).await.unwrap();
    let gid = g.group_id;
    assert_eq!(g.conversation_id, gid);
    assert_eq!(g.member_count, 2);
    assert_eq!(g.owner, a);
    assert_eq!(g.my_role, pb::GroupRole::Owner as i32);
    // Both members see the notice, seq 1; bob gets the group's profile with his role.
    let n = notice(&mut bob_ev).await;
    assert_eq!((n.seq, n.conversation_id, n.from_user), (1, gid, a));
    assert_eq!(n.text, "alice created the group \"Team\" and added bob");
    assert_eq!(notice(&mut alice_ev).await.seq, 1);
    assert_eq!(
        group_updated(&mut bob_ev, gid).await.my_role,
        pb::GroupRole::Member as i32
    );

    // A message: stored once, acked, pushed to the other member, in the conversation list.
    let ok = alice
        .send_group_text(gid, "hello @bob", &[b], false)
        .await
        .unwrap();
    assert_eq!((ok.conversation_id, ok.seq), (gid, 2));
    let m = next_message(&mut bob_ev).await;
    assert_eq!((m.seq, m.text.as_str(), m.to_user), (2, "hello @bob", 0));
    assert_eq!(m.mentions, vec![b]);
    let convs = bob.conversations().await.unwrap();
    let entry = convs.iter().find(|c| c.conversation_id == gid).unwrap();
    assert_eq!(entry.group.as_ref().unwrap().name, "Team");
    assert!(entry.mentioned);
    assert_eq!(entry.unread, 2);
    bob.mark_read(gid, 0).await.unwrap();
    let convs = bob.conversations().await.unwrap();
    let entry = convs.iter().find(|c| c.conversation_id == gid).unwrap();
    assert!(!entry.mentioned, "reading past the mention clears it");
    assert_eq!(entry.unread, 0);

    // A resend of the same client_msg_id stores nothing new.
    let again = alice
        .send(pb::SendMessage {
            conversation_id: gid,
            client_msg_id: 77,
            text: "once".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let dup = alice
        .send(pb::SendMessage {
            conversation_id: gid,
            client_msg_id: 77,
            text: "once".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (dup.seq, dup.duplicate, again.duplicate),
        (again.seq, true, false)
    );
    assert_eq!(next_message(&mut bob_ev).await.text, "once");
    bob.mark_read(gid, 0).await.unwrap();
    // A non-member can neither send, read nor look.
    assert_eq!(code(dave.mark_read(gid, 0).await), ErrorCode::NotAMember);
    assert_eq!(
        code(dave.send_group_text(gid, "hi", &[], false).await),
        ErrorCode::NotAMember
    );
    assert_eq!(code(hist(&dave, gid).await), ErrorCode::NotAMember);
    assert_eq!(code(dave.group_info(gid).await), ErrorCode::NotAMember);
    assert_eq!(
        code(dave.group_members(gid, 0, 0).await),
        ErrorCode::NotAMember
    );
    // Mentions must name members.
    assert_eq!(
        code(alice.send_group_text(gid, "hey", &[d], false).await),
        ErrorCode::InvalidArgument
    );

    // carol joins: she reads only what follows (the notice of her joining).
    let inv = alice.group_invite(gid, &[c, b]).await.unwrap();
    assert_eq!((inv.added, inv.pending), (vec![c], vec![]));
    let (n, info) = joined(&mut carol_ev, gid).await;
    assert_eq!((n.seq, n.text.as_str()), (4, "alice added carol"));
    assert_eq!(notice(&mut bob_ev).await.seq, 4);
    assert_eq!(info.member_count, 3);
    let h = hist(&carol, gid).await.unwrap();
    assert_eq!(h.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![4]);
    // Paging forward from before her joining shows her no more.
    let h = carol
        .history(pb::History {
            conversation_id: gid,
            after_seq: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(h.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![4]);
    // Card names and the member list with roles and online state.
    carol.group_set_card(gid, "Carol (QA)").await.unwrap();
    let list = carol.group_members(gid, 2, 0).await.unwrap();
    assert!(list.has_more);
    assert_eq!(list.members.len(), 2);
    let rest = carol
        .group_members(gid, 2, list.members[1].user_id)
        .await
        .unwrap();
    assert!(!rest.has_more);
    let all: Vec<_> = list.members.into_iter().chain(rest.members).collect();
    assert_eq!(
        all.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![a, b, c]
    );
    assert_eq!(all[0].role, pb::GroupRole::Owner as i32);
    assert_eq!(all[2].card, "Carol (QA)");
    assert!(all.iter().all(|m| m.online));

    // Roles: only the owner appoints; an admin removes plain members, not the owner.
    assert_eq!(
        code(bob.group_set_role(gid, c, pb::GroupRole::Admin).await),
        ErrorCode::Forbidden
    );
    alice
        .group_set_role(gid, b, pb::GroupRole::Admin)
        .await
        .unwrap();
    assert_eq!(notice(&mut carol_ev).await.text, "alice made bob an admin");
    assert_eq!(code(bob.group_remove(gid, a).await), ErrorCode::Forbidden);
    assert_eq!(code(carol.group_remove(gid, b).await), ErrorCode::Forbidden);
    bob.group_remove(gid, c).await.unwrap();
    let n = notice(&mut carol_ev).await;
    assert_eq!(n.text, "bob removed carol");
    assert_eq!(
        group_removed(&mut carol_ev, gid).await.reason,
        pb::GroupRemovedReason::Removed as i32
    );
    // carol gets nothing after that, and can no longer send or read.
    alice
        .send_group_text(gid, "after carol", &[], false)
        .await
        .unwrap();
    no_message_within(&mut carol_ev, 300).await;
    assert_eq!(
        code(carol.send_group_text(gid, "x", &[], false).await),
        ErrorCode::NotAMember
    );
    assert_eq!(code(hist(&carol, gid).await), ErrorCode::NotAMember);
    assert!(carol.groups().await.unwrap().is_empty());

    // The owner cannot leave; a transfer makes bob the owner, then alice can.
    assert_eq!(code(alice.group_leave(gid).await), ErrorCode::Forbidden);
    assert_eq!(code(bob.group_transfer(gid, a).await), ErrorCode::Forbidden);
    alice.group_transfer(gid, b).await.unwrap();
    let now_owner = next_event(&mut bob_ev, |e| match e {
        Event::GroupUpdated(g) if g.owner == b => Some(g),
        _ => None,
    })
    .await;
    assert_eq!(now_owner.my_role, pb::GroupRole::Owner as i32);
    alice.group_leave(gid).await.unwrap();
    assert!(alice.groups().await.unwrap().is_empty());
    let bob_groups = bob.groups().await.unwrap();
    assert_eq!((bob_groups.len(), bob_groups[0].member_count), (1, 1));
    // One gapless sequence: messages and notices.
    let h = hist(&bob, gid).await.unwrap();
    assert_eq!(
        h.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=9).rev().collect::<Vec<_>>()
    );
    assert_eq!(h[0].text, "alice left the group");
    assert_eq!(h[1].text, "alice made bob the group owner");

    // Only the owner dismisses; afterwards the group is gone.
    bob.group_dismiss(gid).await.unwrap();
    let last = next_event(&mut bob_ev, |e| match e {
        Event::Message(m) if m.seq == 10 => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(
        (last.kind, last.text.as_str()),
        (SYSTEM, "bob dismissed the group")
    );
    assert_eq!(code(bob.group_info(gid).await), ErrorCode::NotFound);
    assert_eq!(
        code(bob.send_group_text(gid, "x", &[], false).await),
        ErrorCode::NotAMember
    );
    drop((alice, bob, carol, dave, dave_ev));
}

#[tokio::test]
async fn profile_announcement_mutes_and_mention_all() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut u = users(&addr, &["alice", "bob", "carol"]).await;
    let (carol, mut carol_ev) = u.pop().unwrap();
    let (bob, mut bob_ev) = u.pop().unwrap();
    let (alice, _alice_ev) = u.pop().unwrap();
    let (b, c) = (uid(&bob), uid(&carol));
    befriend(&alice, &bob).await;
    befriend(&alice, &carol).await;
    let gid = alice
        .group_create("G", &[b, c], false)
        .await
        .unwrap()
        .group_id;
    notice(&mut bob_ev).await;
    notice(&mut carol_ev).await;
    group_updated(&mut bob_ev, gid).await;

    // The announcement: a notice and a push of the profile.
    let changed = alice
        .group_update(pb::UpdateGroup {
            group_id: gid,
            announcement: Some("meeting at 3".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(changed.announcement, "meeting at 3");
    assert_eq!(
        notice(&mut bob_ev).await.text,
        "alice posted an announcement: meeting at 3"
    );
    notice(&mut carol_ev).await;
    assert_eq!(
        group_updated(&mut bob_ev, gid).await.announcement,
        "meeting at 3"
    );
    let plain = pb::UpdateGroup {
        group_id: gid,
        name: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(code(bob.group_update(plain).await), ErrorCode::Forbidden);

    // One member muted for a minute: the error says how long.
    assert_eq!(code(bob.group_mute(gid, c, 60).await), ErrorCode::Forbidden);
    alice.group_mute(gid, b, 60).await.unwrap();
    assert_eq!(
        notice(&mut carol_ev).await.text,
        "alice muted bob for 1 minute(s)"
    );
    let left = muted_for(bob.send_group_text(gid, "hi", &[], false).await);
    assert!((50_000..=60_000).contains(&left), "{left}");
    carol
        .send_group_text(gid, "I can talk", &[], false)
        .await
        .unwrap();
    alice.group_mute(gid, b, 0).await.unwrap();
    bob.send_group_text(gid, "me too now", &[], false)
        .await
        .unwrap();

    // Mute all: plain members are muted until it is lifted; admins and the owner speak.
    alice
        .group_set_role(gid, c, pb::GroupRole::Admin)
        .await
        .unwrap();
    alice.group_mute_all(gid, true).await.unwrap();
    assert!(
        group_updated(&mut bob_ev, gid).await.mute_all
            || bob.group_info(gid).await.unwrap().mute_all
    );
    assert_eq!(
        muted_for(bob.send_group_text(gid, "hi", &[], false).await),
        0
    );
    carol
        .send_group_text(gid, "admin here", &[], false)
        .await
        .unwrap();
    alice
        .send_group_text(gid, "owner here", &[], false)
        .await
        .unwrap();
    // @all: owner and admins only.
    assert_eq!(
        code(bob.send_group_text(gid, "@all", &[], true).await),
        ErrorCode::Muted
    );
    alice.group_mute_all(gid, false).await.unwrap();
    assert_eq!(
        code(bob.send_group_text(gid, "@all", &[], true).await),
        ErrorCode::Forbidden
    );
    let ok = carol
        .send_group_text(gid, "@all standup", &[], true)
        .await
        .unwrap();
    let list = bob.conversations().await.unwrap();
    assert!(
        list.iter()
            .find(|x| x.conversation_id == gid)
            .unwrap()
            .mentioned
    );
    let h = hist(&bob, gid).await.unwrap();
    assert_eq!((h[0].seq, h[0].mention_all), (ok.seq, true));
    // The sender's own @all does not flag their list.
    let list = carol.conversations().await.unwrap();
    assert!(
        !list
            .iter()
            .find(|x| x.conversation_id == gid)
            .unwrap()
            .mentioned
    );
}

#[tokio::test]
async fn invitations_wait_for_approval_and_the_member_limit_holds() {
    let s = TestServer::start_with(|c| c.max_group_members = 3).await;
    let addr = s.addr();
    let mut u = users(&addr, &["alice", "bob", "carol", "dave"]).await;
    let (dave, mut dave_ev) = u.pop().unwrap();
    let (carol, mut carol_ev) = u.pop().unwrap();
    let (bob, mut bob_ev) = u.pop().unwrap();
    let (alice, mut alice_ev) = u.pop().unwrap();
    let (b, c, d) = (uid(&bob), uid(&carol), uid(&dave));
    befriend(&alice, &bob).await;
    befriend(&bob, &carol).await;
    befriend(&bob, &dave).await;
    let gid = alice
        .group_create("Club", &[b], true)
        .await
        .unwrap()
        .group_id;
    notice(&mut bob_ev).await;

    // bob (a plain member) invites his friends: they wait for approval.
    let inv = bob.group_invite(gid, &[c, d]).await.unwrap();
    assert_eq!((inv.added, inv.pending), (vec![], vec![c, d]));
    let to_dave = next_event(&mut dave_ev, |e| match e {
        Event::GroupInvitation(i) => Some(i),
        _ => None,
    })
    .await;
    assert_eq!(
        (to_dave.group_id, to_dave.user_id, to_dave.inviter),
        (gid, d, b)
    );
    assert_eq!(to_dave.group_name, "Club");
    next_event(&mut alice_ev, |e| match e {
        Event::GroupInvitation(i) if i.user_id == c => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(alice.group_invites().await.unwrap().len(), 2);
    assert_eq!(dave.group_invites().await.unwrap().len(), 1);
    assert!(bob.group_invites().await.unwrap().is_empty());
    // dave declines; bob cannot approve carol; alice does.
    dave.group_answer_invite(gid, d, false).await.unwrap();
    assert_eq!(
        code(dave.group_answer_invite(gid, d, false).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(bob.group_answer_invite(gid, c, true).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(carol.group_answer_invite(gid, c, true).await),
        ErrorCode::Forbidden
    );
    alice.group_answer_invite(gid, c, true).await.unwrap();
    let n = notice(&mut carol_ev).await;
    assert_eq!(
        (n.seq, n.text.as_str()),
        (2, "alice added carol (invited by bob)")
    );
    assert!(alice.group_invites().await.unwrap().is_empty());

    // Full at 3 (the configured limit).
    let inv = bob.group_invite(gid, &[d]).await.unwrap();
    assert_eq!(inv.pending, vec![d]);
    assert_eq!(
        code(alice.group_answer_invite(gid, d, true).await),
        ErrorCode::GroupFull
    );
    alice
        .group_update(pb::UpdateGroup {
            group_id: gid,
            join_approval: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        code(bob.group_invite(gid, &[d]).await),
        ErrorCode::GroupFull
    );
    assert_eq!(
        code(bob.group_create("x", &[c, d, uid(&alice)], false).await),
        ErrorCode::GroupFull
    );
}

/// 1,000 members online each receive every message once, in order. The members are put in
/// the database directly (users, friendships and session tokens): registering and logging in
/// 1,000 accounts through the protocol would hash 2,000 passwords, a minute in a debug build.
/// A member removed and invited again, online all along: nothing from the time outside, then
/// the group from the new joining on, in order (the client skips what it may not read).
#[tokio::test]
async fn a_member_removed_and_invited_again_reads_from_the_new_joining() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let mut u = users(&addr, &["alice", "bob"]).await;
    let (bob, mut bob_ev) = u.pop().unwrap();
    let (alice, _alice_ev) = u.pop().unwrap();
    let b = uid(&bob);
    befriend(&alice, &bob).await;
    let gid = alice.group_create("G", &[b], false).await.unwrap().group_id;
    alice.send_group_text(gid, "one", &[], false).await.unwrap();
    assert_eq!(messages(&mut bob_ev, 2).await[1].text, "one");
    alice.group_remove(gid, b).await.unwrap();
    group_removed(&mut bob_ev, gid).await;
    alice
        .send_group_text(gid, "while out", &[], false)
        .await
        .unwrap();
    alice.group_invite(gid, &[b]).await.unwrap();
    alice
        .send_group_text(gid, "welcome back", &[], false)
        .await
        .unwrap();
    let got = next_event(&mut bob_ev, |e| match e {
        Event::Message(m) if m.seq == 5 => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got.text, "alice added bob");
    let next = next_message(&mut bob_ev).await;
    assert_eq!((next.seq, next.text.as_str()), (6, "welcome back"));
    let h = hist(&bob, gid).await.unwrap();
    assert_eq!(h.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![6, 5]);
    no_message_within(&mut bob_ev, 200).await;
    // A new device of bob syncs the group from the new joining only.
    let (_bob2, mut bob2_ev) = login(&addr, "bob", "second").await;
    let synced: Vec<u64> = messages(&mut bob2_ev, 2)
        .await
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(synced, vec![5, 6]);
    no_message_within(&mut bob2_ev, 200).await;
}
