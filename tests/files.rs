//! Uploads and downloads through the Rust client SDK: deduplication (秒传), resume after a
//! server restart, chunks in any order and again, SHA-256 mismatch, quota and size limits,
//! hostile names, bad chunks, ranged and batched downloads, images' dimensions and
//! thumbnails, and chat flowing on the connection while chunks are in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use feige_client::{Client, Event};
use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use feige_tests::files::{
    all_files, begin, blob_path, bytes, chunk, download, download_all, finish, gone, part, png,
    sha256, upload, CHUNK,
};
use feige_tests::sdk::{code, login, next_event, register};
use feige_tests::TestServer;

async fn user(s: &TestServer, name: &str) -> Client {
    register(&s.addr(), name).await;
    login(&s.addr(), name, "d").await.0
}

#[tokio::test]
async fn the_same_bytes_are_stored_once_and_complete_at_once() {
    let s = TestServer::start().await;
    let (a, b) = (user(&s, "ann").await, user(&s, "bob").await);
    let data = bytes(CHUNK + 1000, 1);
    let first = upload(&a, "a.bin", "", &data).await;
    assert_eq!(
        (first.name.as_str(), first.size),
        ("a.bin", data.len() as u64)
    );
    assert_eq!(first.sha256.to_vec(), sha256(&data));
    // 秒传: bob's begin completes at once with a file of his own, under his own name.
    let st = begin(&b, "b-copy.bin", "text/plain", &data).await.unwrap();
    assert!(st.complete && st.deduplicated, "{st:?}");
    let copy = st.file.unwrap();
    assert_ne!(copy.file_id, first.file_id);
    assert_eq!(
        (copy.name.as_str(), copy.owner),
        ("b-copy.bin", feige_tests::sdk::uid(&b))
    );
    assert_eq!(download_all(&b, copy.file_id, false).await.unwrap(), data);
    // One blob on disk holds both.
    let blobs: Vec<_> = all_files(&s.dir.path().join("files"))
        .into_iter()
        .filter(|p| !p.starts_with(s.dir.path().join("files/uploads")))
        .collect();
    assert_eq!(blobs, vec![blob_path(s.dir.path(), &sha256(&data))]);
}

#[tokio::test]
async fn an_upload_resumes_after_a_server_restart() {
    let s = TestServer::start().await;
    let a = user(&s, "ann").await;
    let data = bytes(2 * CHUNK + 777, 2);
    let st = begin(&a, "big.bin", "", &data).await.unwrap();
    assert_eq!((st.chunk_count, st.chunk_size), (3, CHUNK as u32));
    chunk(&a, st.upload_id, 2, part(&data, 2)).await.unwrap();
    chunk(&a, st.upload_id, 0, part(&data, 0)).await.unwrap();
    a.close().await;
    // Partial files no upload names (left by a crash) are removed at start.
    let uploads = s.dir.path().join("files/uploads");
    std::fs::write(uploads.join("999999"), b"stray").unwrap();
    std::fs::write(uploads.join("7.thumb"), b"stray").unwrap();
    let s = s.restart_with(|_| {}).await;
    assert!(gone(&uploads.join("999999")).await && gone(&uploads.join("7.thumb")).await);
    let a = login(&s.addr(), "ann", "d").await.0;
    let again = begin(&a, "big.bin", "", &data).await.unwrap();
    assert_eq!(again.upload_id, st.upload_id, "the same upload resumes");
    assert_eq!(again.received.to_vec(), vec![0b101]);
    assert_eq!(again.received_bytes, (CHUNK + 777) as u64);
    let ok = chunk(&a, st.upload_id, 1, part(&data, 1)).await.unwrap();
    assert!(ok.all_received);
    let f = finish(&a, st.upload_id).await.unwrap();
    assert_eq!(download_all(&a, f.file_id, false).await.unwrap(), data);
}

#[tokio::test]
async fn chunks_come_in_any_order_and_again() {
    let s = TestServer::start().await;
    let a = user(&s, "ann").await;
    let data = bytes(3 * CHUNK + 5, 3);
    let st = begin(&a, "x", "", &data).await.unwrap();
    let mut last = None;
    for i in [3usize, 1, 0, 1, 3] {
        last = Some(
            chunk(&a, st.upload_id, i as u32, part(&data, i))
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    assert_eq!(last.received_bytes, (2 * CHUNK + 5) as u64);
    assert!(!last.all_received);
    assert_eq!(
        code(finish(&a, st.upload_id).await),
        ErrorCode::UploadIncomplete
    );
    assert!(
        chunk(&a, st.upload_id, 2, part(&data, 2))
            .await
            .unwrap()
            .all_received
    );
    let f = finish(&a, st.upload_id).await.unwrap();
    assert_eq!(download_all(&a, f.file_id, false).await.unwrap(), data);
    // Finished: the upload id is gone.
    assert_eq!(code(finish(&a, st.upload_id).await), ErrorCode::NotFound);
}

#[tokio::test]
async fn a_sha256_mismatch_is_refused_and_the_upload_discarded() {
    let s = TestServer::start().await;
    let a = user(&s, "ann").await;
    let data = bytes(1000, 4);
    let mut other = data.clone();
    other[10] ^= 1;
    let st = begin(&a, "x", "", &data).await.unwrap();
    chunk(&a, st.upload_id, 0, &other).await.unwrap();
    assert_eq!(
        code(finish(&a, st.upload_id).await),
        ErrorCode::HashMismatch
    );
    assert_eq!(code(finish(&a, st.upload_id).await), ErrorCode::NotFound);
    assert!(!s
        .dir
        .path()
        .join("files/uploads")
        .join(st.upload_id.to_string())
        .exists());
    assert!(!blob_path(s.dir.path(), &sha256(&other)).exists());
    assert!(!blob_path(s.dir.path(), &sha256(&data)).exists());
}

#[tokio::test]
async fn size_and_quota_limits_are_refused() {
    let s = TestServer::start_with(|c| {
        c.max_file_size = 600_000;
        c.file_quota_bytes = 1_000_000;
    })
    .await;
    let a = user(&s, "ann").await;
    assert_eq!(
        code(begin(&a, "x", "", &bytes(600_001, 1)).await),
        ErrorCode::FileTooLarge
    );
    assert_eq!(
        code(begin(&a, "x", "", &[]).await),
        ErrorCode::InvalidArgument
    );
    let kept = bytes(600_000, 2);
    upload(&a, "one", "", &kept).await;
    // An unfinished upload counts too, and so does a deduplicated one.
    assert_eq!(
        code(begin(&a, "two", "", &bytes(500_000, 3)).await),
        ErrorCode::QuotaExceeded
    );
    assert_eq!(
        code(begin(&a, "again", "", &kept).await),
        ErrorCode::QuotaExceeded
    );
    upload(&a, "small", "", &bytes(400_000, 4)).await;
    // Another user has a quota of their own.
    let b = user(&s, "bob").await;
    upload(&b, "bobs", "", &bytes(500_000, 5)).await;
}

#[tokio::test]
async fn hostile_names_never_reach_the_disk() {
    let s = TestServer::start().await;
    let a = user(&s, "ann").await;
    let cases: [(&str, Option<&str>); 7] = [
        ("../../etc/passwd", Some("passwd")),
        ("/tmp/absolute", Some("absolute")),
        ("..\\..\\boot.ini", Some("boot.ini")),
        ("CON", Some("CON")),
        ("evil\0.txt", None),
        ("..", None),
        ("", None),
    ];
    for (i, (name, kept)) in cases.iter().enumerate() {
        let data = bytes(100 + i, i as u8);
        match kept {
            Some(kept) => assert_eq!(upload(&a, name, "", &data).await.name, *kept),
            None => assert_eq!(
                code(begin(&a, name, "", &data).await),
                ErrorCode::InvalidArgument,
                "{name:?}"
            ),
        }
    }
    let long = "n".repeat(10 * 1024);
    assert_eq!(
        code(begin(&a, &long, "", b"x").await),
        ErrorCode::InvalidArgument
    );
    // On disk: only hash-named blobs (and numbered partial files).
    for p in all_files(s.dir.path()) {
        let rel = p
            .strip_prefix(s.dir.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !rel.starts_with("files") {
            assert!(rel.starts_with("feige"), "unexpected file {rel}");
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "a file named {rel}"
        );
    }
}

#[tokio::test]
async fn bad_chunks_are_refused() {
    let s = TestServer::start().await;
    let (a, b) = (user(&s, "ann").await, user(&s, "bob").await);
    let data = bytes(CHUNK + 10, 5);
    let st = begin(&a, "x", "", &data).await.unwrap();
    let id = st.upload_id;
    // Wrong length (short of a whole chunk, or a last chunk too long), index out of range.
    assert_eq!(
        code(chunk(&a, id, 0, &data[..100]).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(chunk(&a, id, 1, &data[..11]).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(chunk(&a, id, 2, &data[..10]).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(chunk(&a, id, u32::MAX, &data[..10]).await),
        ErrorCode::InvalidArgument
    );
    // Unknown, and someone else's.
    assert_eq!(
        code(chunk(&a, id + 1000, 0, part(&data, 0)).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(chunk(&b, id, 0, part(&data, 0)).await),
        ErrorCode::NotFound
    );
    assert_eq!(code(finish(&b, id).await), ErrorCode::NotFound);
    let abort = |c: &Client, upload_id| {
        let r = RequestKind::UploadAbort(pb::UploadAbort { upload_id });
        let c = c.clone();
        async move { c.request(r).await }
    };
    assert_eq!(code(abort(&b, id).await), ErrorCode::NotFound);
    // Aborted: gone, with its partial file.
    chunk(&a, id, 1, part(&data, 1)).await.unwrap();
    assert!(s
        .dir
        .path()
        .join("files/uploads")
        .join(id.to_string())
        .exists());
    abort(&a, id).await.unwrap();
    assert_eq!(
        code(chunk(&a, id, 0, part(&data, 0)).await),
        ErrorCode::NotFound
    );
    assert!(!s
        .dir
        .path()
        .join("files/uploads")
        .join(id.to_string())
        .exists());
    assert_eq!(
        code(begin(&a, "x", "", &data[..0]).await),
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn downloads_are_ranged_and_batched() {
    // A reply page of about 300 KiB, so that a batch is cut.
    let s = TestServer::start_with(|c| c.max_frame_len = 301 * 1024).await;
    let a = user(&s, "ann").await;
    let one = bytes(CHUNK + 100, 6);
    let two = bytes(5000, 7);
    let f1 = upload(&a, "one", "", &one).await;
    let f2 = upload(&a, "two", "", &two).await;
    let d = download(&a, f1.file_id, 1000, 5000, false).await.unwrap();
    assert_eq!((d.offset, d.size), (1000, one.len() as u64));
    assert_eq!(d.data.to_vec(), one[1000..6000].to_vec());
    let d = download(&a, f1.file_id, 10, 0, false).await.unwrap();
    assert_eq!(d.data.len(), CHUNK, "at most 256 KiB per answer");
    let d = download(&a, f1.file_id, one.len() as u64, 0, false)
        .await
        .unwrap();
    assert!(d.data.is_empty());
    assert_eq!(
        code(download(&a, f1.file_id, one.len() as u64 + 1, 0, false).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(download(&a, 999_999, 0, 0, false).await),
        ErrorCode::NotFound
    );
    let item = |file_id, offset, length| pb::Download {
        file_id,
        offset,
        length,
        thumbnail: false,
    };
    let many = |items: Vec<pb::Download>| {
        let a = a.clone();
        async move {
            match a
                .request(RequestKind::DownloadMany(pb::DownloadMany { items }))
                .await?
            {
                ResponseResult::DownloadMany(l) => Ok(l.items),
                other => panic!("DownloadMany answered {other:?}"),
            }
        }
    };
    let items = many(vec![
        item(f2.file_id, 0, 0),
        item(999_999, 0, 0),
        item(f2.file_id, 10, 20),
    ])
    .await
    .unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].data.to_vec(), two);
    assert_eq!(
        items[1].error.as_ref().map(|e| e.code),
        Some(ErrorCode::NotFound as i32)
    );
    assert_eq!(items[2].data.to_vec(), two[10..30].to_vec());
    // Two 256 KiB parts do not fit a 300 KiB page: the second is cut.
    let items = many(vec![item(f1.file_id, 0, 0), item(f1.file_id, 0, 0)])
        .await
        .unwrap();
    assert_eq!((items[0].data.len(), items[0].truncated), (CHUNK, false));
    assert!(
        items[1].truncated && items[1].data.len() < CHUNK,
        "{}",
        items[1].data.len()
    );
    assert_eq!(
        code(many(vec![item(f2.file_id, 0, 0); 65]).await),
        ErrorCode::InvalidArgument
    );
    // GetFiles.
    let r = a
        .request(RequestKind::FileInfo(pb::GetFiles {
            file_ids: vec![f2.file_id, f1.file_id],
        }))
        .await
        .unwrap();
    let ResponseResult::FileInfo(list) = r else {
        panic!("{r:?}")
    };
    let names: Vec<_> = list.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["two", "one"]);
}

#[tokio::test]
async fn images_are_sniffed_measured_and_thumbnailed() {
    let s = TestServer::start().await;
    let a = user(&s, "ann").await;
    // Named and typed as anything: the content decides.
    let img = png(600, 300, 9);
    let f = upload(&a, "photo.dat", "application/x-whatever", &img).await;
    assert_eq!(
        (f.mime.as_str(), f.width, f.height),
        ("image/png", 600, 300)
    );
    assert_ne!(f.thumbnail_id, 0);
    let thumb = download_all(&a, f.file_id, true).await.unwrap();
    let t = image::load_from_memory(&thumb).unwrap();
    assert_eq!((t.width(), t.height()), (256, 128));
    // A file claiming to be an image that is not one is not kept as one.
    let fake = upload(&a, "fake.png", "image/png", b"not a png at all").await;
    assert_eq!(
        (fake.mime.as_str(), fake.width, fake.thumbnail_id),
        ("application/octet-stream", 0, 0)
    );
    assert_eq!(
        code(download(&a, fake.file_id, 0, 0, true).await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn chat_flows_on_the_connection_while_chunks_are_in_flight() {
    let s = TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.file_workers = 1;
    })
    .await;
    let a = user(&s, "ann").await;
    let bob = register(&s.addr(), "bob").await;
    let (_b, mut b_events) = login(&s.addr(), "bob", "d").await;
    const CHUNKS: usize = 128;
    let data = std::sync::Arc::new(bytes(CHUNKS * CHUNK, 8));
    let st = begin(&a, "big", "", &data).await.unwrap();
    // An uploader keeps sixteen chunks (4 MiB, the connection's allowance) in flight.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let uploader = {
        let (a, data, answered) = (a.clone(), data.clone(), answered.clone());
        tokio::spawn(async move {
            let window = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
            let mut chunks = tokio::task::JoinSet::new();
            for i in 0..CHUNKS {
                let permit = window.clone().acquire_owned().await.unwrap();
                let (a, data, answered) = (a.clone(), data.clone(), answered.clone());
                chunks.spawn(async move {
                    chunk(&a, st.upload_id, i as u32, part(&data, i))
                        .await
                        .unwrap();
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    drop(permit);
                });
            }
            while let Some(r) = chunks.join_next().await {
                r.unwrap();
            }
        })
    };
    // Once the first chunk is answered the transfer is under way: a message goes out on
    // the same connection and reaches bob before the transfer ends.
    while answered.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let sent = a.send_text(bob, "still here").await.unwrap();
    let got = next_event(&mut b_events, |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    let answered_then = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!((got.text.as_str(), got.seq), ("still here", sent.seq));
    eprintln!("chunks answered when the message arrived: {answered_then} of {CHUNKS}");
    assert!(
        answered_then < CHUNKS,
        "the transfer ended before the message got through"
    );
    uploader.await.unwrap();
    let f = finish(&a, st.upload_id).await.unwrap();
    assert_eq!(f.size, data.len() as u64);
}

#[tokio::test]
async fn chunks_past_the_connections_allowance_are_busy() {
    // One chunk's worth in flight per connection.
    let s = TestServer::start_with(|c| c.upload_bytes_per_connection = CHUNK).await;
    let a = user(&s, "ann").await;
    let data = bytes(16 * CHUNK, 9);
    let st = begin(&a, "x", "", &data).await.unwrap();
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..16usize {
        let (a, bytes) = (a.clone(), part(&data, i).to_vec());
        burst.spawn(async move { (i, chunk(&a, st.upload_id, i as u32, &bytes).await) });
    }
    let mut busy = Vec::new();
    while let Some(r) = burst.join_next().await {
        match r.unwrap() {
            (_, Ok(_)) => {}
            (i, Err(e)) => {
                assert_eq!(e.code(), Some(ErrorCode::Busy), "{e:?}");
                busy.push(i);
            }
        }
    }
    assert!(
        !busy.is_empty(),
        "sixteen chunks at once fit an allowance of one"
    );
    // Sent again one at a time, they all go in.
    for i in busy {
        chunk(&a, st.upload_id, i as u32, part(&data, i))
            .await
            .unwrap();
    }
    let f = finish(&a, st.upload_id).await.unwrap();
    assert_eq!(download_all(&a, f.file_id, false).await.unwrap(), data);
}
