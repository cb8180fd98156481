//! `feige upload`, `download`, `send-file`, `avatar` and `transcribe` against a real server on
//! port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use feige_tests::TestServer;
use serde_json::Value;

/// Runs `feige --json --user USER args...`; returns its JSON lines, or the error code.
async fn feige(
    server: &str,
    state: &Path,
    user: &str,
    args: &[&str],
) -> Result<Vec<Value>, String> {
    common::feige_json(server, state, Some(user), args).await
}

/// `n` bytes of a fixed pattern.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// CRC-32 (IEEE), for the PNG chunks below.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A valid `w`x`h` RGB PNG, stored without compression.
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.extend_from_slice(&[(x * 40) as u8, (y * 40) as u8, 200]);
        }
    }
    // zlib: one stored block, then Adler-32.
    let mut z = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(!len).to_le_bytes());
    z.extend_from_slice(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    for (kind, data) in [(&b"IHDR"[..], ihdr), (b"IDAT", z), (b"IEND", Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(&data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_download_send_file_and_avatar_from_the_command_line() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    for name in ["alice", "bob"] {
        feige(&addr, st, name, &["register", name]).await.unwrap();
        feige(&addr, st, name, &["login"]).await.unwrap();
    }
    let files = tempfile::tempdir().unwrap();
    let bytes = pattern(700 * 1024 + 3);
    let src = files.path().join("notes.txt");
    std::fs::write(&src, &bytes).unwrap();
    let src_s = src.to_str().unwrap();

    // Upload: the file id, its size and mime (from the extension); stdout is a pipe, so no
    // progress bar gets in the way of the JSON.
    let up = feige(&addr, st, "alice", &["upload", src_s]).await.unwrap();
    assert_eq!(up.len(), 1, "{up:?}");
    let up = &up[0];
    assert_eq!(up["type"], "uploaded");
    assert_eq!(up["size"], bytes.len() as u64);
    assert_eq!(up["mime"], "text/plain");
    assert_eq!(up["deduplicated"], false);
    let file_id = up["file_id"].as_str().unwrap().to_owned();
    let again = feige(&addr, st, "alice", &["upload", src_s, "--name", "copy.txt"])
        .await
        .unwrap();
    assert_eq!(again[0]["deduplicated"], true);

    // Download (whole, then a range) by the uploader.
    let out = files.path().join("out.txt");
    let got = feige(
        &addr,
        st,
        "alice",
        &["download", &file_id, out.to_str().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(got[0]["size"], bytes.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let range = files.path().join("range.txt");
    feige(
        &addr,
        st,
        "alice",
        &[
            "download",
            &file_id,
            range.to_str().unwrap(),
            "--offset",
            "1000",
            "--length",
            "300000",
        ],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&range).unwrap(), &bytes[1000..301_000]);

    // send-file: bob gets a file message and may then download it.
    let sent = feige(
        &addr,
        st,
        "alice",
        &["send-file", "bob", src_s, "--caption", "read this"],
    )
    .await
    .unwrap();
    assert_eq!(sent[0]["type"], "sent");
    let sent_file = sent[0]["file_id"].as_str().unwrap().to_owned();
    let history = feige(&addr, st, "bob", &["history", "alice"])
        .await
        .unwrap();
    assert!(history
        .iter()
        .any(|m| m["text"] == "read this" && m["file"]["file_id"] == sent_file.as_str()));
    let bob_copy = files.path().join("bob.txt");
    feige(
        &addr,
        st,
        "bob",
        &["download", &sent_file, bob_copy.to_str().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&bob_copy).unwrap(), bytes);

    // A wrong --kind is refused before anything is uploaded; a missing file names itself.
    let err = feige(
        &addr,
        st,
        "alice",
        &["send-file", "bob", src_s, "--kind", "gif"],
    )
    .await
    .unwrap_err();
    assert_eq!(err, "INVALID_ARGUMENT");
    let err = feige(&addr, st, "alice", &["upload", "/nonexistent/x.bin"])
        .await
        .unwrap_err();
    assert_eq!(err, "INVALID_ARGUMENT");

    // avatar: the profile's avatar is the image's file id.
    let image = files.path().join("me.png");
    std::fs::write(&image, png(4, 3)).unwrap();
    let profile = feige(&addr, st, "alice", &["avatar", image.to_str().unwrap()])
        .await
        .unwrap();
    let avatar = profile[0]["avatar"].as_str().unwrap().to_owned();
    assert!(avatar.parse::<u64>().is_ok(), "{profile:?}");
    let me = feige(&addr, st, "alice", &["whoami"]).await.unwrap();
    assert_eq!(me[0]["avatar"], avatar.as_str());

    // Stickers: add the image, send it, remove it.
    let listed = feige(&addr, st, "alice", &["stickers", "add", &avatar])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["width"], 4);
    let sent = feige(&addr, st, "alice", &["stickers", "send", "bob", &avatar])
        .await
        .unwrap();
    assert_eq!(sent[0]["file_id"], avatar.as_str());
    let left = feige(&addr, st, "alice", &["stickers", "remove", &avatar])
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");

    // An offer: bob downloads only after accepting it.
    let offered = feige(&addr, st, "alice", &["send-file", "bob", src_s, "--offer"])
        .await
        .unwrap();
    let seq = offered[0]["seq"].as_str().unwrap().to_owned();
    let offered_file = offered[0]["file_id"].as_str().unwrap().to_owned();
    let target = files.path().join("offered.txt");
    let err = feige(
        &addr,
        st,
        "bob",
        &["download", &offered_file, target.to_str().unwrap()],
    )
    .await
    .unwrap_err();
    assert_eq!(err, "OFFER_NOT_ACCEPTED");
    let answered = feige(&addr, st, "bob", &["offer", "alice", &seq])
        .await
        .unwrap();
    assert_eq!(answered[0]["state"], "accepted");
    feige(
        &addr,
        st,
        "bob",
        &["download", &offered_file, target.to_str().unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribe_needs_a_target() {
    let s = TestServer::start_open().await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    feige(&addr, st, "carol", &["register", "carol"])
        .await
        .unwrap();
    feige(&addr, st, "carol", &["login"]).await.unwrap();
    // Neither a message nor a file: clap refuses it.
    let run = common::feige(&addr, st, &["--user", "carol", "transcribe"], None).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("--file"), "{}", run.stderr);
}

/// A WAV file: `ms` milliseconds of a quiet tone, 16 kHz mono 16-bit PCM.
fn wav(ms: u32) -> Vec<u8> {
    let samples = 16 * ms;
    let data = samples * 2;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    for v in [16u32, 1 | 1 << 16, 16_000, 32_000, 2 | 16 << 16] {
        w.extend_from_slice(&v.to_le_bytes());
    }
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    for i in 0..samples {
        let v = ((i % 40) as i16 - 20) * 50;
        w.extend_from_slice(&v.to_le_bytes());
    }
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_a_voice_note_and_transcribe_it() {
    let s = TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.speech.engine = feige_server::speech::EngineKind::Command;
        c.speech.command = "/bin/sh".into();
        c.speech.command_args = vec!["-c".into(), "echo hello world".into(), "{wav}".into()];
    })
    .await;
    let addr = s.addr();
    let state = tempfile::tempdir().unwrap();
    let st = state.path();
    for name in ["dave", "erin"] {
        feige(&addr, st, name, &["register", name]).await.unwrap();
        feige(&addr, st, name, &["login"]).await.unwrap();
    }
    let files = tempfile::tempdir().unwrap();
    let note = files.path().join("hi.wav");
    std::fs::write(&note, wav(500)).unwrap();
    // The kind comes from the mime type: audio is a voice note.
    let sent = feige(
        &addr,
        st,
        "dave",
        &["send-file", "erin", note.to_str().unwrap()],
    )
    .await
    .unwrap();
    let seq = sent[0]["seq"].as_str().unwrap().to_owned();
    let file_id = sent[0]["file_id"].as_str().unwrap().to_owned();
    let t = feige(&addr, st, "erin", &["transcribe", "dave", &seq])
        .await
        .unwrap();
    assert_eq!(t[0]["text"], "hello world");
    assert_eq!(t[0]["engine"], "command");
    let t = feige(&addr, st, "dave", &["transcribe", "--file", &file_id])
        .await
        .unwrap();
    assert_eq!(t[0]["text"], "hello world");
    let history = feige(&addr, st, "dave", &["history", "erin"])
        .await
        .unwrap();
    assert!(
        history.iter().any(|m| m["transcript"] == "hello world"),
        "{history:?}"
    );
}
