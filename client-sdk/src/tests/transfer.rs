//! File transfers against a scripted fake file server: only missing chunks are sent after a
//! lost connection, dedup completes at once, downloads survive short answers and ranges,
//! cancellation discards the upload.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use feige_protocol::{pb, RequestKind, ResponseResult};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::{start, Peer};
use crate::{CancellationToken, Client, ClientError, Progress};

const CHUNK: usize = 256 * 1024;

/// What the fake server holds across connections.
#[derive(Default)]
struct Store {
    /// The upload in progress: its chunks by index.
    chunks: BTreeMap<u32, Bytes>,
    begin: Option<pb::UploadBegin>,
    /// The stored file.
    file: Option<(pb::FileInfo, Bytes)>,
    /// Chunk indices received, per connection.
    received: Vec<Vec<u32>>,
    aborted: bool,
}

/// How one connection of the fake behaves.
#[derive(Clone, Copy, Default)]
struct Script {
    /// Drop the connection after storing this many chunks.
    drop_after: Option<usize>,
    /// Never answer chunk requests (so a cancellation finds the upload mid-way).
    stall_chunks: bool,
    /// Answer downloads with at most this many bytes.
    short_reads: Option<usize>,
}

fn sha256(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

fn info(store: &Store) -> pb::FileInfo {
    store
        .file
        .as_ref()
        .map(|(f, _)| f.clone())
        .unwrap_or_default()
}

/// Serves file requests on `p` until the script ends the connection or the peer closes.
async fn serve(p: &mut Peer, store: &Arc<Mutex<Store>>, script: Script) {
    let conn = {
        let mut s = store.lock().await;
        s.received.push(Vec::new());
        s.received.len() - 1
    };
    let mut stored_here = 0;
    loop {
        let (id, kind) =
            match tokio::time::timeout(std::time::Duration::from_secs(5), p.request()).await {
                Ok(r) => r,
                Err(_) => return,
            };
        let mut s = store.lock().await;
        let answer = match kind {
            RequestKind::UploadBegin(b) => {
                if let Some((f, _)) = s.file.as_ref().filter(|(f, _)| f.sha256 == b.sha256) {
                    ResponseResult::UploadBegin(pb::UploadState {
                        complete: true,
                        deduplicated: true,
                        file: Some(f.clone()),
                        ..Default::default()
                    })
                } else {
                    let count = (b.size as usize).div_ceil(CHUNK) as u32;
                    let mut bitmap = vec![0u8; (count as usize).div_ceil(8)];
                    for i in s.chunks.keys() {
                        bitmap[(*i / 8) as usize] |= 1 << (i % 8);
                    }
                    let held = s.chunks.values().map(|c| c.len() as u64).sum();
                    s.begin = Some(b);
                    ResponseResult::UploadBegin(pb::UploadState {
                        upload_id: 5,
                        chunk_size: CHUNK as u32,
                        chunk_count: count,
                        received: bitmap.into(),
                        received_bytes: held,
                        ..Default::default()
                    })
                }
            }
            RequestKind::UploadChunk(c) => {
                if script.stall_chunks {
                    continue;
                }
                s.received[conn].push(c.index);
                s.chunks.insert(c.index, c.data);
                stored_here += 1;
                let held = s.chunks.values().map(|c| c.len() as u64).sum();
                let size = s.begin.as_ref().map_or(0, |b| b.size);
                let ok = pb::ChunkOk {
                    upload_id: 5,
                    index: c.index,
                    received_bytes: held,
                    all_received: held == size,
                };
                if script.drop_after == Some(stored_here) {
                    return;
                }
                ResponseResult::UploadChunk(ok)
            }
            RequestKind::UploadFinish(_) => {
                let data: Vec<u8> = s.chunks.values().flat_map(|c| c.iter().copied()).collect();
                let begin = s.begin.clone().unwrap_or_default();
                assert_eq!(sha256(&data), begin.sha256, "the bytes match the hash");
                let f = pb::FileInfo {
                    file_id: 42,
                    name: begin.name,
                    size: data.len() as u64,
                    mime: begin.mime,
                    sha256: begin.sha256,
                    ..Default::default()
                };
                s.file = Some((f.clone(), data.into()));
                s.chunks.clear();
                ResponseResult::UploadFinish(f)
            }
            RequestKind::UploadAbort(_) => {
                s.aborted = true;
                s.chunks.clear();
                ResponseResult::UploadAbort(pb::Done {})
            }
            RequestKind::FileInfo(_) => ResponseResult::FileInfo(pb::FileList {
                files: vec![info(&s)],
            }),
            RequestKind::Download(d) => {
                let data = s.file.as_ref().map(|(_, d)| d.clone()).unwrap_or_default();
                let from = (d.offset as usize).min(data.len());
                let want = match d.length {
                    0 => CHUNK,
                    n => n as usize,
                }
                .min(script.short_reads.unwrap_or(usize::MAX));
                let to = (from + want).min(data.len());
                ResponseResult::Download(pb::FileData {
                    file_id: d.file_id,
                    offset: d.offset,
                    data: data.slice(from..to),
                    size: data.len() as u64,
                    ..Default::default()
                })
            }
            other => panic!("unexpected request {other:?}"),
        };
        drop(s);
        p.respond(id, answer).await;
    }
}

/// A client logged in to the fake at `l`, and the fake's first connection.
async fn connected(l: &TcpListener, config: crate::ClientConfig) -> (Client, Peer) {
    let config = crate::ClientConfig {
        auto_sync: false,
        ..config
    };
    let (connected, mut p) = tokio::join!(Client::connect(config), async {
        let mut p = Peer::accept(l).await;
        p.hello(30_000, false).await;
        p
    });
    let (client, _events) = connected.unwrap();
    let login = tokio::spawn({
        let c = client.clone();
        async move { c.login("u", "p").await.unwrap() }
    });
    p.login().await;
    login.await.unwrap();
    (client, p)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

#[tokio::test]
async fn an_upload_resumes_with_only_the_missing_chunks_then_downloads() {
    let (l, config) = start().await;
    let (client, mut p) = connected(&l, config).await;
    let dir = tempfile::tempdir().unwrap();
    let bytes = pattern(5 * CHUNK - 1000);
    let src = dir.path().join("a.bin");
    std::fs::write(&src, &bytes).unwrap();

    let store = Arc::new(Mutex::new(Store::default()));
    let fake = {
        let store = store.clone();
        tokio::spawn(async move {
            let script = Script {
                drop_after: Some(2),
                ..Script::default()
            };
            serve(&mut p, &store, script).await;
            drop(p);
            let mut p = Peer::accept(&l).await;
            p.hello(30_000, true).await;
            let script = Script {
                short_reads: Some(100_000),
                ..Script::default()
            };
            serve(&mut p, &store, script).await;
        })
    };
    let mut seen = Vec::new();
    let cancel = CancellationToken::new();
    let up = client
        .upload_file(&src, None, None, |p: Progress| seen.push(p), &cancel)
        .await
        .unwrap();
    assert!(!up.deduplicated);
    assert_eq!(up.file.size, bytes.len() as u64);
    assert_eq!(up.file.mime, "application/octet-stream");
    {
        let s = store.lock().await;
        assert_eq!(s.received[0].len(), 2);
        // The second connection got exactly the chunks the first did not store.
        let mut again = s.received[1].clone();
        again.sort_unstable();
        let expected: Vec<u32> = (0..5).filter(|i| !s.received[0].contains(i)).collect();
        assert_eq!(again, expected);
    }
    assert!(seen.iter().all(|p| p.total == bytes.len() as u64));
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));

    // The same bytes again: done at once.
    let again = client
        .upload_file(&src, None, Some("b.bin"), |_| {}, &cancel)
        .await
        .unwrap();
    assert!(again.deduplicated);

    // Downloads through answers shorter than asked: whole, then a range.
    let out = dir.path().join("out.bin");
    let got = client
        .download_file(42, &out, 0, 0, |_| {}, &cancel)
        .await
        .unwrap();
    assert_eq!(got.size, bytes.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let range = dir.path().join("range.bin");
    let got = client
        .download_file(42, &range, 300_000, 500_000, |_| {}, &cancel)
        .await
        .unwrap();
    assert_eq!(got.size, 500_000);
    assert_eq!(std::fs::read(&range).unwrap(), &bytes[300_000..800_000]);
    let past = client
        .download_file(42, &range, bytes.len() as u64 + 1, 0, |_| {}, &cancel)
        .await;
    assert!(matches!(past, Err(ClientError::Invalid(_))), "{past:?}");
    client.close().await;
    fake.abort();
}

#[tokio::test]
async fn a_cancelled_upload_stops_and_is_discarded() {
    let (l, config) = start().await;
    let (client, mut p) = connected(&l, config).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("c.bin");
    std::fs::write(&src, pattern(3 * CHUNK)).unwrap();
    let store = Arc::new(Mutex::new(Store::default()));
    let fake = {
        let store = store.clone();
        tokio::spawn(async move {
            let script = Script {
                stall_chunks: true,
                ..Script::default()
            };
            serve(&mut p, &store, script).await;
        })
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let mut first = true;
    let result = client
        .upload_file(
            &src,
            None,
            None,
            move |_| {
                // The first report comes after UploadBegin: cancel while chunks hang.
                if std::mem::take(&mut first) {
                    stop.cancel();
                }
            },
            &cancel,
        )
        .await;
    assert!(matches!(result, Err(ClientError::Cancelled)), "{result:?}");
    // The abort reaches the fake (sent without waiting for it).
    for _ in 0..100 {
        if store.lock().await.aborted {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(store.lock().await.aborted);

    // Cancelled before it begins: no request at all.
    let result = client.upload_file(&src, None, None, |_| {}, &cancel).await;
    assert!(matches!(result, Err(ClientError::Cancelled)));
    client.close().await;
    fake.abort();
}
