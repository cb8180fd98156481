//! The file methods of `feige_call` against a real server: upload → file_info → download
//! equality, progress events, file messages, dedup, `cancel`, bad params, and an upload that
//! survives a server restart.

use std::path::Path;
use std::time::{Duration, Instant};

use feige_tests::TestServer;
use serde_json::{json, Value};

use super::{creds, wait_for, Ev, Server, C};
use crate::FeigeStatus;

/// `n` bytes of a fixed pseudo-random pattern (`seed` picks which).
fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn id_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_owned()
}

/// Two logged-in users, alice and bob.
fn two_users(addr: &str) -> (C, C, String) {
    let alice = C::connect(addr);
    let bob = C::connect(addr);
    alice.ok("register", creds("alice"));
    let b_id = id_of(&bob.ok("register", creds("bob")), "user_id");
    alice.ok("login", creds("alice"));
    bob.ok("login", creds("bob"));
    (alice, bob, b_id)
}

/// The progress events of request `id` among `events`, as (done, total).
fn progress_of(events: &[Ev], id: u64) -> Vec<(u64, u64)> {
    events
        .iter()
        .filter(|e| e.kind == 2 && e.json["type"] == "progress")
        .filter(|e| e.json["request_id"].as_str() == Some(&*id.to_string()))
        .map(|e| {
            (
                e.json["done"].as_u64().unwrap(),
                e.json["total"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn upload_info_download_and_file_messages() {
    let server = Server::start();
    let (alice, bob, b_id) = two_users(&server.addr());
    let dir = tempfile::tempdir().unwrap();
    let bytes = pattern(3 * 1024 * 1024 + 12_345, 1);
    let src = write(dir.path(), "report.bin", &bytes);

    // Upload, with progress events of this request only, never past the total.
    let id = alice
        .call(
            "upload_file",
            &json!({ "path": src, "mime": "application/pdf" }),
        )
        .unwrap();
    let mut others = Vec::new();
    let done = alice.response(id, &mut others);
    assert_eq!(done.status, 0, "{}", done.json);
    let up = done.json;
    assert_eq!(up["size"], bytes.len() as u64);
    assert_eq!(up["sha256"], sha256_hex(&bytes));
    assert_eq!(up["deduplicated"], false);
    let file_id = id_of(&up, "file_id");
    let progress = progress_of(&others, id);
    assert!(!progress.is_empty(), "no progress events: {others:?}");
    assert!(progress
        .iter()
        .all(|&(d, t)| t == bytes.len() as u64 && d <= t));
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0));

    let info = alice.ok("file_info", json!({ "file_id": file_id }));
    assert_eq!(info["name"], "report.bin");
    assert_eq!(info["mime"], "application/pdf");
    assert_eq!(info["size"], bytes.len() as u64);
    assert_eq!(info["sha256"], up["sha256"]);

    // The same bytes again: stored once, completed at once.
    let again = alice.ok("upload_file", json!({ "path": src, "name": "copy.bin" }));
    assert_eq!(again["deduplicated"], true);

    // A file message; bob gets the file's metadata with it, and may download it.
    alice.ok(
        "send_message",
        json!({ "to_user": b_id, "kind": "file", "file_id": file_id, "text": "the report" }),
    );
    let pushed = bob.push_of("message");
    assert_eq!(pushed["kind"], "file");
    assert_eq!(pushed["text"], "the report");
    assert_eq!(pushed["file"]["file_id"], file_id.as_str());
    assert_eq!(pushed["file"]["size"], bytes.len() as u64);

    let out = dir.path().join("got.bin");
    let got = bob.ok(
        "download_file",
        json!({ "file_id": file_id, "path": out.to_str().unwrap() }),
    );
    assert_eq!(got["size"], bytes.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert!(!dir.path().join("got.bin.part").exists());

    // A range across a piece boundary.
    let part = dir.path().join("range.bin");
    let (offset, length) = (256 * 1024 - 100, 300_000);
    let got = bob.ok(
        "download_file",
        json!({ "file_id": file_id, "path": part.to_str().unwrap(),
                "offset": offset, "length": length }),
    );
    assert_eq!(got["size"], length);
    assert_eq!(
        std::fs::read(&part).unwrap(),
        &bytes[offset..offset + length]
    );

    // Past the end: the call's own argument is wrong.
    let (status, err) = bob.run(
        "download_file",
        json!({ "file_id": file_id, "path": part.to_str().unwrap(),
                "offset": bytes.len() + 1 }),
    );
    assert_eq!(status, FeigeStatus::FEIGE_ERR_PARAMS as i32, "{err}");

    // A file the caller may not read.
    let carol = C::connect(&server.addr());
    carol.ok("register", creds("carol"));
    carol.ok("login", creds("carol"));
    let (status, _) = carol.run("file_info", json!({ "file_id": file_id }));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32);
}

#[test]
fn bad_params_are_refused_with_a_reason() {
    let server = Server::start();
    let c = C::connect(&server.addr());
    let params = FeigeStatus::FEIGE_ERR_PARAMS as i32;
    assert_eq!(c.call("upload_file", &json!({})), Err(params));
    assert!(
        super::last_error().contains("\"path\""),
        "{}",
        super::last_error()
    );
    assert_eq!(c.call("upload_file", &json!({ "path": "" })), Err(params));
    assert_eq!(
        c.call(
            "download_file",
            &json!({ "file_id": "x", "path": "/tmp/x" })
        ),
        Err(params)
    );
    assert_eq!(
        c.call("transcribe", &json!({ "file_id": "1", "seq": "2" })),
        Err(params)
    );
    assert!(super::last_error().contains("file_id"));
    assert_eq!(c.call("cancel", &json!({})), Err(params));
    assert_eq!(
        c.call("download_many", &json!({ "items": [] })),
        Err(params)
    );
    assert_eq!(
        c.call(
            "answer_file_offer",
            &json!({ "conversation_id": "1", "seq": "1" })
        ),
        Err(params)
    );
    // A send of a file message needs no text; a text message still does.
    assert_eq!(
        c.call("send_message", &json!({ "to_user": "2" })),
        Err(params)
    );

    // A path that cannot be read fails the call, naming it.
    c.ok("register", creds("dora"));
    c.ok("login", creds("dora"));
    let (status, err) = c.run("upload_file", json!({ "path": "/nonexistent/feige-x" }));
    assert_eq!(status, FeigeStatus::FEIGE_ERR_PARAMS as i32, "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/feige-x"));
}

#[test]
fn cancel_stops_uploads_and_downloads() {
    let server = Server::start();
    let (alice, _bob, _) = two_users(&server.addr());
    let dir = tempfile::tempdir().unwrap();
    let bytes = pattern(40 * 1024 * 1024, 2);
    let src = write(dir.path(), "big.bin", &bytes);

    // Cancelled at once: it ends cancelled, and `cancel` itself succeeds.
    let id = alice.call("upload_file", &json!({ "path": src })).unwrap();
    let cancel = alice.call("cancel", &json!({ "request_id": id })).unwrap();
    let mut others = Vec::new();
    let ended = alice.response(id, &mut others);
    assert_eq!(ended.status, FeigeStatus::FEIGE_ERR_CANCELLED as i32);
    // `cancel` may complete before the upload does (the upload's task ends on its own
    // thread), so its completion may already be among the events read meanwhile.
    let cancelled = match others
        .iter()
        .position(|e| e.kind == 1 && e.request_id == cancel)
    {
        Some(i) => others.remove(i),
        None => alice.response(cancel, &mut others),
    };
    assert_eq!(cancelled.status, 0);
    // Cancelling a finished request does nothing.
    assert_eq!(alice.ok("cancel", json!({ "request_id": id })), json!({}));

    // A download cancelled after its first progress event stops short of the file.
    let up = alice.ok("upload_file", json!({ "path": src }));
    let out = dir.path().join("big.out");
    let id = alice
        .call(
            "download_file",
            &json!({ "file_id": up["file_id"], "path": out.to_str().unwrap() }),
        )
        .unwrap();
    wait_for(&alice, &mut Vec::new(), |j| {
        j["type"] == "progress" && j["request_id"].as_str() == Some(&*id.to_string())
    });
    alice.call("cancel", &json!({ "request_id": id })).unwrap();
    let ended = alice.response(id, &mut others);
    assert_eq!(ended.status, FeigeStatus::FEIGE_ERR_CANCELLED as i32);
    assert!(
        !out.exists(),
        "a cancelled download is not renamed into place"
    );
    let held = std::fs::metadata(dir.path().join("big.out.part"))
        .unwrap()
        .len();
    assert!(held < bytes.len() as u64);

    // Downloading again continues the .part and ends with the whole file.
    let got = alice.ok(
        "download_file",
        json!({ "file_id": up["file_id"], "path": out.to_str().unwrap() }),
    );
    assert_eq!(got["size"], bytes.len() as u64);
    assert!(std::fs::read(&out).unwrap() == bytes);
}

#[test]
fn an_upload_survives_a_server_restart() {
    let mut server = Server::start();
    let addr = server.addr();
    let c = C::connect(&addr);
    c.ok("register", creds("erin"));
    c.ok("login", creds("erin"));
    let dir = tempfile::tempdir().unwrap();
    let bytes = pattern(48 * 1024 * 1024, 3);
    let src = write(dir.path(), "long.bin", &bytes);

    let id = c.call("upload_file", &json!({ "path": src })).unwrap();
    wait_for(&c, &mut Vec::new(), |j| {
        j["type"] == "progress" && j["done"].as_u64().unwrap_or(0) > 0
    });

    // The server goes away mid-upload and comes back on the same address and data.
    let TestServer { handle, dir: data } = server.server.take().unwrap();
    server.rt.block_on(handle.shutdown());
    let listen: std::net::SocketAddr = addr.parse().unwrap();
    let data_dir = data.path().to_owned();
    server.server = Some(server.rt.block_on(TestServer::start_with(|config| {
        config.listen = listen;
        config.data_dir = data_dir;
    })));

    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        assert!(Instant::now() < deadline, "the upload did not finish");
        match c.wait(200) {
            Ok(e) if e.kind == 1 && e.request_id == id => break e,
            Ok(_) | Err(_) => {}
        }
    };
    assert_eq!(ended.status, 0, "{}", ended.json);
    assert_eq!(ended.json["sha256"], sha256_hex(&bytes));
    let out = dir.path().join("long.out");
    c.ok(
        "download_file",
        json!({ "file_id": ended.json["file_id"], "path": out.to_str().unwrap() }),
    );
    assert!(std::fs::read(&out).unwrap() == bytes);
    drop(c);
    drop(server);
    drop(data);
}

/// CRC-32 (IEEE) of a PNG chunk.
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
        raw.push(0);
        for x in 0..w {
            raw.extend_from_slice(&[(x * 40) as u8, (y * 40) as u8, 200]);
        }
    }
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

#[test]
fn images_stickers_avatars_offers_and_download_many() {
    let server = Server::start();
    let (alice, bob, b_id) = two_users(&server.addr());
    let dir = tempfile::tempdir().unwrap();
    let image = png(5, 3);
    let src = write(dir.path(), "cat.png", &image);

    // An image: its dimensions come from its content.
    let up = alice.ok("upload_file", json!({ "path": src }));
    let file_id = id_of(&up, "file_id");
    let info = alice.ok("file_info", json!({ "file_id": file_id }));
    assert_eq!(info["mime"], "image/png");
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(5), Some(3))
    );

    // The avatar: the profile names the uploaded file.
    let profile = alice.ok("set_avatar", json!({ "path": src }));
    assert!(
        profile["avatar"].as_str().unwrap().parse::<u64>().is_ok(),
        "{profile}"
    );

    // Stickers: add, list, send one, remove.
    let list = alice.ok("add_sticker", json!({ "file_id": file_id }));
    assert_eq!(list["files"][0]["file_id"], file_id.as_str());
    assert_eq!(
        alice.ok("stickers", json!({}))["files"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    alice.ok(
        "send_message",
        json!({ "to_user": b_id, "kind": "sticker", "file_id": file_id }),
    );
    let pushed = bob.push_of("message");
    assert_eq!(pushed["kind"], "sticker");
    assert_eq!(pushed["file"]["file_id"], file_id.as_str());
    let list = alice.ok("remove_sticker", json!({ "file_id": file_id }));
    assert!(list["files"].as_array().unwrap().is_empty());

    // download_many: the image's bytes in base64, and an item's own error.
    let many = bob.ok(
        "download_many",
        json!({ "items": [{ "file_id": file_id }, { "file_id": "999999" }] }),
    );
    let items = many["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["size"], image.len() as u64);
    assert_eq!(
        items[0]["data"],
        crate::encoding::base64(&image).as_str(),
        "{many}"
    );
    assert!(items[1]["error"]["code"].is_string(), "{many}");

    // An offer: bob must accept before downloading; alice hears the answer.
    let doc = write(dir.path(), "big.iso", &pattern(300_000, 9));
    let offered = alice.ok("upload_file", json!({ "path": doc }));
    let offered_id = id_of(&offered, "file_id");
    let sent = alice.ok(
        "send_message",
        json!({ "to_user": b_id, "kind": "file", "file_id": offered_id, "offer": true }),
    );
    let pushed = bob.push_of("message");
    assert_eq!(pushed["offer"], "pending");
    let out = dir.path().join("iso.out");
    let (status, err) = bob.run(
        "download_file",
        json!({ "file_id": offered_id, "path": out.to_str().unwrap() }),
    );
    assert_eq!(status, FeigeStatus::FEIGE_ERR_SERVER as i32);
    assert_eq!(err["error"]["code"], "OFFER_NOT_ACCEPTED");
    let answer = bob.ok(
        "answer_file_offer",
        json!({ "conversation_id": sent["conversation_id"], "seq": sent["seq"], "accept": true }),
    );
    assert_eq!(answer["state"], "accepted");
    let heard = alice.push_of("file_offer_answered");
    assert_eq!(heard["state"], "accepted");
    assert_eq!(heard["user_id"], b_id.as_str());
    bob.ok(
        "download_file",
        json!({ "file_id": offered_id, "path": out.to_str().unwrap() }),
    );
    assert_eq!(std::fs::read(&out).unwrap(), pattern(300_000, 9));
}

/// A WAV file: `ms` milliseconds of a quiet tone, 16 kHz mono 16-bit PCM.
fn wav(ms: u32) -> Vec<u8> {
    let samples = 16 * ms;
    let data = samples * 2;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&16_000u32.to_le_bytes());
    w.extend_from_slice(&32_000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    for i in 0..samples {
        let v = ((i % 40) as i16 - 20) * 50;
        w.extend_from_slice(&v.to_le_bytes());
    }
    w
}

#[test]
fn a_voice_message_is_transcribed_once_for_every_member() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A command engine that says the same words whatever it hears.
    let ts = rt.block_on(TestServer::start_with(|c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.speech.engine = feige_server::speech::EngineKind::Command;
        c.speech.command = "/bin/sh".into();
        c.speech.command_args = vec!["-c".into(), "echo go forward".into(), "{wav}".into()];
    }));
    let server = Server {
        rt,
        server: Some(ts),
    };
    let (alice, bob, b_id) = two_users(&server.addr());
    let dir = tempfile::tempdir().unwrap();
    let note = write(dir.path(), "note.wav", &wav(600));
    let up = alice.ok("upload_file", json!({ "path": note }));
    let file_id = id_of(&up, "file_id");
    let info = alice.ok("file_info", json!({ "file_id": file_id }));
    assert_eq!(info["duration_ms"], 600, "{info}");

    // By file: the text and the engine.
    let t = alice.ok("transcribe", json!({ "file_id": file_id }));
    assert_eq!(t["text"], "go forward");
    assert_eq!(t["engine"], "command");

    // By message: stored with it and pushed to the members.
    let sent = alice.ok(
        "send_message",
        json!({ "to_user": b_id, "kind": "voice", "file_id": file_id }),
    );
    let pushed = bob.push_of("message");
    assert_eq!(pushed["kind"], "voice");
    let t = bob.ok(
        "transcribe",
        json!({ "conversation_id": sent["conversation_id"], "seq": sent["seq"] }),
    );
    assert_eq!(t["text"], "go forward");
    assert_eq!(t["seq"], sent["seq"]);
    let heard = alice.push_of("transcribed");
    assert_eq!(heard["text"], "go forward");
    assert_eq!(heard["conversation_id"], sent["conversation_id"]);
    let page = alice.ok(
        "history",
        json!({ "conversation_id": sent["conversation_id"] }),
    );
    assert_eq!(page["messages"][0]["transcript"], "go forward", "{page}");
}
