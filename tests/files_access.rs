//! Who may read a file, and when a file is deleted: a conversation's members (a group's
//! from their joining on, and no longer once removed), avatars for everyone logged in, and
//! reference counting that removes the blob from disk once nothing uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::Client;
use feige_protocol::{pb, ErrorCode, RequestKind};
use feige_tests::files::{
    blob_path, download, download_all, gone, png, quick_sweep, sha256, upload,
};
use feige_tests::sdk::{befriend, code, login, register, uid};
use feige_tests::TestServer;

async fn user(s: &TestServer, name: &str) -> Client {
    register(&s.addr(), name).await;
    login(&s.addr(), name, "d").await.0
}

fn file_message(conversation_id: u64, kind: pb::MessageKind, file_id: u64) -> pb::SendMessage {
    pb::SendMessage {
        conversation_id,
        kind: kind as i32,
        file_id,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_file_sent_in_a_conversation_is_for_its_members_only() {
    let s = TestServer::start().await;
    let (a, b, c) = (
        user(&s, "ann").await,
        user(&s, "bob").await,
        user(&s, "cat").await,
    );
    let conv = befriend(&a, &b).await;
    let f = upload(&a, "doc.txt", "text/plain", b"for bob only").await;
    // Before it is sent, only its uploader reads it.
    assert_eq!(
        code(download(&b, f.file_id, 0, 0, false).await),
        ErrorCode::Forbidden
    );
    a.send(file_message(conv, pb::MessageKind::File, f.file_id))
        .await
        .unwrap();
    assert_eq!(
        download_all(&b, f.file_id, false).await.unwrap(),
        b"for bob only"
    );
    let refused = download(&c, f.file_id, 0, 0, false).await;
    assert_eq!(code(refused), ErrorCode::Forbidden);
    assert_eq!(
        code(download(&c, f.file_id + 100, 0, 0, false).await),
        ErrorCode::NotFound
    );
    // Nor can a stranger send it on.
    let cc = befriend(&c, &a).await;
    assert_eq!(
        code(
            c.send(file_message(cc, pb::MessageKind::File, f.file_id))
                .await
        ),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn group_members_read_from_their_joining_and_lose_access_when_removed() {
    let s = TestServer::start().await;
    let (a, b, c) = (
        user(&s, "ann").await,
        user(&s, "bob").await,
        user(&s, "cat").await,
    );
    befriend(&a, &b).await;
    befriend(&a, &c).await;
    let g = a.group_create("g", &[uid(&b)], false).await.unwrap();
    let early = upload(&a, "early", "", b"before cat").await;
    a.send(file_message(
        g.conversation_id,
        pb::MessageKind::File,
        early.file_id,
    ))
    .await
    .unwrap();
    a.group_invite(g.group_id, &[uid(&c)]).await.unwrap();
    let late = upload(&a, "late", "", b"after cat").await;
    a.send(file_message(
        g.conversation_id,
        pb::MessageKind::File,
        late.file_id,
    ))
    .await
    .unwrap();
    assert_eq!(
        download_all(&b, early.file_id, false).await.unwrap(),
        b"before cat"
    );
    assert_eq!(
        download_all(&c, late.file_id, false).await.unwrap(),
        b"after cat"
    );
    // Cat joined after the first file was sent.
    assert_eq!(
        code(download(&c, early.file_id, 0, 0, false).await),
        ErrorCode::Forbidden
    );
    // Bob is removed: the group's files are no longer his to read.
    a.group_remove(g.group_id, uid(&b)).await.unwrap();
    assert_eq!(
        code(download(&b, early.file_id, 0, 0, false).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(download(&b, late.file_id, 0, 0, false).await),
        ErrorCode::Forbidden
    );
    let later = upload(&a, "later", "", b"after bob").await;
    a.send(file_message(
        g.conversation_id,
        pb::MessageKind::File,
        later.file_id,
    ))
    .await
    .unwrap();
    assert_eq!(
        code(download(&b, later.file_id, 0, 0, false).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        download_all(&c, later.file_id, false).await.unwrap(),
        b"after bob"
    );
}

#[tokio::test]
async fn avatars_are_readable_by_everyone_logged_in() {
    let s = TestServer::start().await;
    let (a, b) = (user(&s, "ann").await, user(&s, "bob").await);
    let face = upload(&a, "me.png", "", &png(64, 64, 1)).await;
    let avatar = |id: String| pb::UpdateProfile {
        avatar: Some(id),
        ..Default::default()
    };
    let p = a
        .update_profile(avatar(face.file_id.to_string()))
        .await
        .unwrap();
    assert_eq!(p.avatar, face.file_id.to_string());
    assert_eq!(
        download_all(&b, face.file_id, false).await.unwrap(),
        png(64, 64, 1)
    );
    download_all(&b, face.file_id, true).await.unwrap();
    // Only an image the user may read can be an avatar.
    let text = upload(&a, "t.txt", "", b"no image").await;
    assert_eq!(
        code(a.update_profile(avatar(text.file_id.to_string())).await),
        ErrorCode::InvalidArgument
    );
    let private = upload(&b, "b.png", "", &png(8, 8, 2)).await;
    assert_eq!(
        code(a.update_profile(avatar(private.file_id.to_string())).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(a.update_profile(avatar("99999".into())).await),
        ErrorCode::NotFound
    );
    // A group's avatar likewise.
    befriend(&a, &b).await;
    let g = a.group_create("g", &[uid(&b)], false).await.unwrap();
    let logo = upload(&a, "logo.png", "", &png(16, 16, 3)).await;
    let u = pb::UpdateGroup {
        group_id: g.group_id,
        avatar: Some(logo.file_id.to_string()),
        ..Default::default()
    };
    a.request(RequestKind::GroupUpdate(u)).await.unwrap();
    let c = user(&s, "cat").await;
    download_all(&c, logo.file_id, false).await.unwrap();
}

#[tokio::test]
async fn a_blob_nothing_uses_is_removed_from_disk() {
    let s = TestServer::start_with(|c| {
        quick_sweep(c);
        c.dm_policy = feige_tests::DmPolicy::Anyone;
    })
    .await;
    let (a, b) = (user(&s, "ann").await, user(&s, "bob").await);
    let dir = s.dir.path();
    // An avatar replaced: the old image and its thumbnail go.
    let old = png(40, 40, 1);
    let first = upload(&a, "1.png", "", &old).await;
    let second = upload(&a, "2.png", "", &png(40, 40, 2)).await;
    let set = |id: u64| pb::UpdateProfile {
        avatar: Some(id.to_string()),
        ..Default::default()
    };
    a.update_profile(set(first.file_id)).await.unwrap();
    let thumb = download_all(&a, first.file_id, true).await.unwrap();
    let (blob, thumb_blob) = (
        blob_path(dir, &sha256(&old)),
        blob_path(dir, &sha256(&thumb)),
    );
    assert!(blob.exists() && thumb_blob.exists());
    a.update_profile(set(second.file_id)).await.unwrap();
    assert!(gone(&blob).await, "the replaced avatar stays on disk");
    assert!(gone(&thumb_blob).await, "its thumbnail stays on disk");
    assert_eq!(
        code(download(&a, first.file_id, 0, 0, false).await),
        ErrorCode::NotFound
    );
    // The avatar in use stays.
    assert!(blob_path(dir, &sha256(&png(40, 40, 2))).exists());
    // A recalled message's file.
    let data = b"recall me".to_vec();
    let f = upload(&a, "r.txt", "", &data).await;
    let sent = a
        .send(pb::SendMessage {
            to_user: uid(&b),
            kind: pb::MessageKind::File as i32,
            file_id: f.file_id,
            ..Default::default()
        })
        .await
        .unwrap();
    let blob = blob_path(dir, &sha256(&data));
    a.recall(sent.conversation_id, sent.seq).await.unwrap();
    assert!(
        gone(&blob).await,
        "the recalled message's file stays on disk"
    );
    assert_eq!(
        code(download(&b, f.file_id, 0, 0, false).await),
        ErrorCode::NotFound
    );
    // A sticker removed.
    let img = png(30, 30, 5);
    let st = upload(&a, "s.png", "", &img).await;
    a.request(RequestKind::StickerAdd(pb::AddSticker {
        file_id: st.file_id,
    }))
    .await
    .unwrap();
    let blob = blob_path(dir, &sha256(&img));
    a.request(RequestKind::StickerRemove(pb::RemoveSticker {
        file_id: st.file_id,
    }))
    .await
    .unwrap();
    assert!(gone(&blob).await, "the removed sticker stays on disk");
    // Bytes used twice stay while one use is left.
    let shared = png(20, 20, 6);
    let x = upload(&a, "x.png", "", &shared).await;
    let y = upload(&b, "y.png", "", &shared).await;
    assert_eq!(y.sha256, x.sha256);
    a.update_profile(set(x.file_id)).await.unwrap();
    b.update_profile(set(y.file_id)).await.unwrap();
    a.update_profile(set(second.file_id)).await.unwrap();
    assert!(!gone_within_a_sweep(&blob_path(dir, &sha256(&shared))).await);
    // Ann's file of those bytes went; Bob's, his avatar, keeps them.
    assert_eq!(
        code(download(&a, x.file_id, 0, 0, false).await),
        ErrorCode::NotFound
    );
    assert_eq!(download_all(&a, y.file_id, false).await.unwrap(), shared);
}

/// Whether `path` is gone after a few sweeps (50 ms apart).
async fn gone_within_a_sweep(path: &std::path::Path) -> bool {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    !path.exists()
}
