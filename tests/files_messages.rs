//! Messages that carry files: the kinds' rules, the file's metadata in pushes, sync and
//! history, stickers, and file offers (accept or decline before downloading; the sender
//! hears the answer).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::{Client, Event, Events};
use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use feige_tests::files::{download, download_all, png, upload};
use feige_tests::sdk::{code, login, next_event, next_message, register, uid};
use feige_tests::TestServer;

async fn user(s: &TestServer, name: &str) -> (Client, Events) {
    register(&s.addr(), name).await;
    login(&s.addr(), name, "d").await
}

fn to(user: u64, kind: pb::MessageKind, file_id: u64, text: &str) -> pb::SendMessage {
    pb::SendMessage {
        to_user: user,
        kind: kind as i32,
        file_id,
        text: text.into(),
        ..Default::default()
    }
}

fn history(conversation_id: u64) -> pb::History {
    pb::History {
        conversation_id,
        ..Default::default()
    }
}

async fn stickers(
    c: &Client,
    kind: RequestKind,
) -> Result<Vec<pb::FileInfo>, feige_client::ClientError> {
    // Each request is answered in its own response field, as the .proto numbers them.
    let add = matches!(kind, RequestKind::StickerAdd(_));
    let remove = matches!(kind, RequestKind::StickerRemove(_));
    match c.request(kind).await? {
        ResponseResult::StickerAdd(l) if add => Ok(l.files),
        ResponseResult::StickerRemove(l) if remove => Ok(l.files),
        ResponseResult::Stickers(l) if !add && !remove => Ok(l.files),
        other => panic!("answered {other:?}"),
    }
}

#[tokio::test]
async fn file_messages_carry_their_file_in_push_sync_and_history() {
    let s = TestServer::start_open().await;
    let (a, _) = user(&s, "ann").await;
    let (b, mut b_events) = user(&s, "bob").await;
    let img = png(120, 80, 4);
    let f = upload(&a, "cat.png", "", &img).await;
    let sent = a
        .send(to(uid(&b), pb::MessageKind::Image, f.file_id, ""))
        .await
        .unwrap();
    let pushed = next_message(&mut b_events).await;
    let file = pushed.file.clone().unwrap();
    assert_eq!(
        (
            file.file_id,
            file.name.as_str(),
            file.width,
            file.height,
            file.size
        ),
        (f.file_id, "cat.png", 120, 80, img.len() as u64)
    );
    assert_eq!(file.mime, "image/png");
    assert_ne!(file.thumbnail_id, 0);
    let page = b.history(history(sent.conversation_id)).await.unwrap();
    assert_eq!(page[0].file, pushed.file);
    let r = b
        .request(RequestKind::Sync(pb::Sync::default()))
        .await
        .unwrap();
    let ResponseResult::Sync(sync) = r else {
        panic!("{r:?}")
    };
    assert_eq!(sync.messages.last().unwrap().file, pushed.file);
    assert_eq!(download_all(&b, f.file_id, false).await.unwrap(), img);
    // A caption goes with it; a voice note keeps its measured kind.
    let v = upload(&a, "note.ogg", "audio/ogg", b"opus bytes").await;
    a.send(to(uid(&b), pb::MessageKind::Voice, v.file_id, "listen"))
        .await
        .unwrap();
    let m = next_message(&mut b_events).await;
    assert_eq!(
        (m.text.as_str(), m.file.unwrap().mime.as_str()),
        ("listen", "audio/ogg")
    );
}

#[tokio::test]
async fn each_kind_takes_the_file_it_needs() {
    let s = TestServer::start_open().await;
    let (a, _) = user(&s, "ann").await;
    let (b, _) = user(&s, "bob").await;
    let bob = uid(&b);
    let doc = upload(&a, "doc.txt", "", b"text file").await;
    let img = upload(&a, "i.png", "", &png(10, 10, 1)).await;
    let bad = |m| {
        let a = a.clone();
        async move { code(a.send(m).await) }
    };
    assert_eq!(
        bad(to(bob, pb::MessageKind::Text, doc.file_id, "hi")).await,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(to(bob, pb::MessageKind::Image, 0, "")).await,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(to(bob, pb::MessageKind::File, 0, "x")).await,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(to(bob, pb::MessageKind::Image, doc.file_id, "")).await,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(to(bob, pb::MessageKind::Sticker, img.file_id, "")).await,
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        bad(to(bob, pb::MessageKind::File, 987_654, "")).await,
        ErrorCode::NotFound
    );
    let theirs = upload(&b, "b.txt", "", b"bob's").await;
    assert_eq!(
        bad(to(bob, pb::MessageKind::File, theirs.file_id, "")).await,
        ErrorCode::Forbidden
    );
    let mut offer = to(bob, pb::MessageKind::Image, img.file_id, "");
    offer.offer = true;
    assert_eq!(bad(offer).await, ErrorCode::InvalidArgument);
    a.send(to(bob, pb::MessageKind::Video, doc.file_id, ""))
        .await
        .unwrap();
    a.send(to(bob, pb::MessageKind::Text, 0, "plain"))
        .await
        .unwrap();
}

#[tokio::test]
async fn stickers_are_saved_listed_sent_and_removed() {
    let s = TestServer::start_with(|c| {
        c.max_stickers = 2;
        c.dm_policy = feige_tests::DmPolicy::Anyone;
    })
    .await;
    let (a, _) = user(&s, "ann").await;
    let (b, mut b_events) = user(&s, "bob").await;
    let one = upload(&a, "1.png", "", &png(10, 10, 1)).await;
    let two = upload(&a, "2.png", "", &png(10, 10, 2)).await;
    let three = upload(&a, "3.png", "", &png(10, 10, 3)).await;
    let doc = upload(&a, "d.txt", "", b"no image").await;
    let add = |file_id| RequestKind::StickerAdd(pb::AddSticker { file_id });
    assert_eq!(
        code(stickers(&a, add(doc.file_id)).await),
        ErrorCode::InvalidArgument
    );
    stickers(&a, add(one.file_id)).await.unwrap();
    let list = stickers(&a, add(two.file_id)).await.unwrap();
    let ids: Vec<u64> = list.iter().map(|f| f.file_id).collect();
    assert_eq!(ids, vec![two.file_id, one.file_id], "newest first");
    assert_eq!(
        code(stickers(&a, add(three.file_id)).await),
        ErrorCode::InvalidArgument
    );
    // Sent as a sticker, every member shows it from the same file.
    a.send(to(uid(&b), pb::MessageKind::Sticker, one.file_id, ""))
        .await
        .unwrap();
    let m = next_message(&mut b_events).await;
    assert_eq!(m.kind, pb::MessageKind::Sticker as i32);
    assert_eq!(m.file.unwrap().file_id, one.file_id);
    download_all(&b, one.file_id, false).await.unwrap();
    // Bob may save what he can read as a sticker of his own.
    let list = stickers(&b, add(one.file_id)).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        code(stickers(&b, add(two.file_id)).await),
        ErrorCode::Forbidden
    );
    let remove = |file_id| RequestKind::StickerRemove(pb::RemoveSticker { file_id });
    let list = stickers(&a, remove(one.file_id)).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        code(stickers(&a, remove(one.file_id)).await),
        ErrorCode::NotFound
    );
    let list = stickers(&a, RequestKind::Stickers(pb::ListStickers {}))
        .await
        .unwrap();
    assert_eq!(list[0].file_id, two.file_id);
}

fn offer_answer(e: Event) -> Option<pb::FileOffer> {
    match e {
        Event::FileOfferAnswered(o) => Some(o),
        _ => None,
    }
}

#[tokio::test]
async fn an_offer_is_downloaded_only_once_accepted() {
    let s = TestServer::start_open().await;
    let (a, mut a_events) = user(&s, "ann").await;
    let (b, mut b_events) = user(&s, "bob").await;
    let data = b"a large video, say".to_vec();
    let f = upload(&a, "v.mp4", "video/mp4", &data).await;
    let mut m = to(uid(&b), pb::MessageKind::Video, f.file_id, "");
    m.offer = true;
    let sent = a.send(m).await.unwrap();
    let pushed = next_message(&mut b_events).await;
    assert_eq!(pushed.offer, pb::FileOfferState::Pending as i32);
    assert_eq!(
        code(download(&b, f.file_id, 0, 0, false).await),
        ErrorCode::OfferNotAccepted
    );
    let answer = |accept| {
        RequestKind::FileOfferAnswer(pb::AnswerFileOffer {
            conversation_id: sent.conversation_id,
            seq: sent.seq,
            accept,
        })
    };
    // The sender cannot answer their own offer.
    assert_eq!(code(a.request(answer(true)).await), ErrorCode::Forbidden);
    b.request(answer(false)).await.unwrap();
    let heard = next_event(&mut a_events, offer_answer).await;
    assert_eq!(
        (heard.user_id, heard.state),
        (uid(&b), pb::FileOfferState::Declined as i32)
    );
    assert_eq!(
        code(download(&b, f.file_id, 0, 0, false).await),
        ErrorCode::OfferNotAccepted
    );
    let page = b.history(history(sent.conversation_id)).await.unwrap();
    assert_eq!(page[0].offer, pb::FileOfferState::Declined as i32);
    // Changing one's mind: accepted, downloaded.
    let r = b.request(answer(true)).await.unwrap();
    let ResponseResult::FileOfferAnswer(o) = r else {
        panic!("{r:?}")
    };
    assert_eq!(o.state, pb::FileOfferState::Accepted as i32);
    let heard = next_event(&mut a_events, offer_answer).await;
    assert_eq!(heard.state, pb::FileOfferState::Accepted as i32);
    assert_eq!(download_all(&b, f.file_id, false).await.unwrap(), data);
    // In 1:1 the sender reads the recipient's answer.
    let page = a.history(history(sent.conversation_id)).await.unwrap();
    assert_eq!(page[0].offer, pb::FileOfferState::Accepted as i32);
    // No offer at a plain message.
    let plain = a
        .send(to(uid(&b), pb::MessageKind::Text, 0, "hi"))
        .await
        .unwrap();
    let r = b
        .request(RequestKind::FileOfferAnswer(pb::AnswerFileOffer {
            conversation_id: plain.conversation_id,
            seq: plain.seq,
            accept: true,
        }))
        .await;
    assert_eq!(code(r), ErrorCode::NotFound);
}
