//! Speech-to-text end to end through the Rust client SDK: a voice note uploaded, sent as a
//! VOICE message and transcribed by message (stored once, pushed once, in history) or by
//! file; refusals (non-members, no engine, garbage audio); BUSY when the speech queue is
//! full. The command engine (a shell script) runs in the default test run; PocketSphinx on
//! real recordings with `--features pocketsphinx`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use feige_client::{Client, Event, Events};
use feige_protocol::{pb, ErrorCode, RequestKind, ResponseResult};
use feige_server::speech::{audio, EngineKind, SpeechConfig};
use feige_tests::sdk::{
    befriend, code, login, next_event, next_message, no_event_within, register, uid,
};
use feige_tests::TestServer;

/// Uploads `bytes` as a file named `name` and returns its id.
async fn upload(c: &Client, name: &str, mime: &str, bytes: &[u8]) -> u64 {
    feige_tests::files::upload(c, name, mime, bytes)
        .await
        .file_id
}

/// Sends file `file_id` to `to` as a voice message; returns (conversation, seq).
async fn send_voice(c: &Client, to: u64, file_id: u64) -> (u64, u64) {
    let ok = c
        .send(pb::SendMessage {
            to_user: to,
            kind: pb::MessageKind::Voice as i32,
            file_id,
            ..Default::default()
        })
        .await
        .unwrap();
    (ok.conversation_id, ok.seq)
}

fn by_message(conversation_id: u64, seq: u64) -> RequestKind {
    RequestKind::Transcribe(pb::Transcribe {
        conversation_id,
        seq,
        ..Default::default()
    })
}

fn by_file(file_id: u64, language: &str) -> RequestKind {
    RequestKind::Transcribe(pb::Transcribe {
        file_id,
        language: language.to_owned(),
        ..Default::default()
    })
}

async fn transcribe(c: &Client, kind: RequestKind) -> pb::Transcript {
    match c.request(kind).await.unwrap() {
        ResponseResult::Transcribe(t) => t,
        other => panic!("Transcribe: {other:?}"),
    }
}

fn transcribed(e: Event) -> Option<pb::Transcript> {
    match e {
        Event::Transcribed(t) => Some(t),
        _ => None,
    }
}

/// A shell script `body` in `dir`, as the command engine's program.
fn script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("stt.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A server whose speech engine is the command `body`, with `workers` and `queue`.
async fn command_server(dir: &Path, body: &str, workers: usize, queue: usize) -> TestServer {
    let program = script(dir, body);
    TestServer::start_with(move |c| {
        c.dm_policy = feige_tests::DmPolicy::Anyone;
        c.speech = SpeechConfig {
            engine: EngineKind::Command,
            command: program,
            workers,
            queue,
            ..SpeechConfig::default()
        };
    })
    .await
}

/// Half a second of a 440 Hz tone at 44.1 kHz, stereo: the server converts it.
fn tone_wav() -> Vec<u8> {
    let frames: Vec<i16> = (0..22_050)
        .flat_map(|i| {
            let v = ((i as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 8_000.0) as i16;
            [v, v]
        })
        .collect();
    audio::wav_bytes(&frames, 44_100, 2)
}

/// Alice sends Bob a voice note; both, Alice's second device and a stranger, Carol, log in.
struct Chat {
    alice: Client,
    /// Alice's second device, kept connected for the pushes.
    _alice2: Client,
    alice_other: Events,
    bob: Client,
    bob_events: Events,
    carol: Client,
    file_id: u64,
    conversation: u64,
    seq: u64,
}

async fn chat(server: &TestServer, wav: &[u8]) -> Chat {
    let addr = server.addr();
    register(&addr, "alice").await;
    register(&addr, "bob").await;
    register(&addr, "carol").await;
    let (alice, _) = login(&addr, "alice", "phone").await;
    let (alice2, alice_other) = login(&addr, "alice", "laptop").await;
    let (bob, mut bob_events) = login(&addr, "bob", "phone").await;
    let (carol, _) = login(&addr, "carol", "phone").await;
    let file_id = upload(&alice, "note.wav", "audio/wav", wav).await;
    let (conversation, seq) = send_voice(&alice, uid(&bob), file_id).await;
    let m = next_message(&mut bob_events).await;
    assert_eq!(m.kind, pb::MessageKind::Voice as i32);
    assert_eq!(m.transcript, "");
    Chat {
        alice,
        _alice2: alice2,
        alice_other,
        bob,
        bob_events,
        carol,
        file_id,
        conversation,
        seq,
    }
}

#[tokio::test]
async fn a_voice_message_is_transcribed_stored_and_pushed_once() {
    let dir = tempfile::tempdir().unwrap();
    // The "engine" reports the 16 kHz mono WAV it was given: 8,000 samples and a header.
    let server = command_server(dir.path(), "echo \" heard $(wc -c < \"$1\") bytes \"", 1, 4).await;
    let mut c = chat(&server, &tone_wav()).await;
    let t = transcribe(&c.alice, by_message(c.conversation, c.seq)).await;
    assert_eq!(t.text, "heard 16044 bytes");
    assert_eq!(t.engine, "command");
    assert_eq!((t.conversation_id, t.seq), (c.conversation, c.seq));
    // The peer and Alice's other device hear of it once.
    let pushed = next_event(&mut c.bob_events, transcribed).await;
    assert_eq!(pushed, t);
    assert_eq!(next_event(&mut c.alice_other, transcribed).await, t);
    // History carries it; asking again returns the stored text and pushes nothing.
    let history = c
        .bob
        .history(pb::History {
            conversation_id: c.conversation,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(history[0].transcript, "heard 16044 bytes");
    let again = transcribe(&c.bob, by_message(c.conversation, c.seq)).await;
    assert_eq!(again.text, "heard 16044 bytes");
    assert_eq!(again.engine, "", "a stored transcript names no engine");
    no_event_within(&mut c.bob_events, 300, transcribed).await;
    no_event_within(&mut c.alice_other, 100, transcribed).await;
    // By file: answered, neither stored nor pushed.
    let t = transcribe(&c.bob, by_file(c.file_id, "en-US")).await;
    assert_eq!(
        (t.text.as_str(), t.conversation_id),
        ("heard 16044 bytes", 0)
    );
    no_event_within(&mut c.bob_events, 200, transcribed).await;
    // A stranger may read neither the message nor the file.
    let stranger = c.carol.request(by_message(c.conversation, c.seq)).await;
    assert_eq!(code(stranger), ErrorCode::Forbidden);
    assert_eq!(
        code(c.carol.request(by_file(c.file_id, "")).await),
        ErrorCode::Forbidden
    );
    // Neither both nor none; not a voice message; no such message.
    let both = RequestKind::Transcribe(pb::Transcribe {
        conversation_id: c.conversation,
        seq: c.seq,
        file_id: c.file_id,
        ..Default::default()
    });
    assert_eq!(
        code(c.alice.request(both).await),
        ErrorCode::InvalidArgument
    );
    let none = RequestKind::Transcribe(pb::Transcribe::default());
    assert_eq!(
        code(c.alice.request(none).await),
        ErrorCode::InvalidArgument
    );
    let text = c
        .alice
        .send(pb::SendMessage {
            to_user: uid(&c.bob),
            text: "hi".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let not_voice = c.alice.request(by_message(c.conversation, text.seq)).await;
    assert_eq!(code(not_voice), ErrorCode::InvalidArgument);
    let missing = c.alice.request(by_message(c.conversation, 99)).await;
    assert_eq!(code(missing), ErrorCode::NotFound);
}

#[tokio::test]
async fn in_a_group_only_members_before_the_note_hear_of_it_and_a_recall_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = command_server(dir.path(), "echo group note", 1, 4).await;
    let addr = server.addr();
    for name in ["gina", "hugo", "ivy"] {
        register(&addr, name).await;
    }
    let (gina, mut gina_events) = login(&addr, "gina", "phone").await;
    let (hugo, _) = login(&addr, "hugo", "phone").await;
    let (ivy, mut ivy_events) = login(&addr, "ivy", "phone").await;
    befriend(&gina, &hugo).await;
    befriend(&gina, &ivy).await;
    let group = gina
        .group_create("Team", &[uid(&hugo)], false)
        .await
        .unwrap()
        .group_id;
    let file_id = upload(&gina, "note.wav", "audio/wav", &tone_wav()).await;
    let sent = gina
        .send(pb::SendMessage {
            conversation_id: group,
            kind: pb::MessageKind::Voice as i32,
            file_id,
            ..Default::default()
        })
        .await
        .unwrap();
    // Ivy joins after the note: she cannot read it, and is not told of its transcript.
    gina.group_invite(group, &[uid(&ivy)]).await.unwrap();
    let late = ivy.request(by_message(group, sent.seq)).await;
    assert_eq!(code(late), ErrorCode::NotFound);
    let t = transcribe(&hugo, by_message(group, sent.seq)).await;
    assert_eq!(t.text, "group note");
    assert_eq!(next_event(&mut gina_events, transcribed).await, t);
    no_event_within(&mut ivy_events, 300, transcribed).await;
    // Recalled, it is no longer a voice note.
    gina.recall(group, sent.seq).await.unwrap();
    let r = hugo.request(by_message(group, sent.seq)).await;
    assert_eq!(code(r), ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn garbage_audio_fails_and_a_failing_engine_fails() {
    let dir = tempfile::tempdir().unwrap();
    let server = command_server(dir.path(), "echo 'no luck' >&2; exit 1", 1, 4).await;
    let addr = server.addr();
    register(&addr, "dora").await;
    let (dora, _) = login(&addr, "dora", "phone").await;
    let junk = upload(&dora, "note.wav", "audio/wav", b"this is no audio at all").await;
    let r = dora.request(by_file(junk, "")).await;
    assert_eq!(code(r), ErrorCode::TranscriptionFailed);
    let wav = upload(&dora, "tone.wav", "audio/wav", &tone_wav()).await;
    let r = dora.request(by_file(wav, "")).await;
    assert_eq!(code(r), ErrorCode::TranscriptionFailed);
}

#[tokio::test]
async fn without_an_engine_transcribe_is_unavailable() {
    let server = TestServer::start_open().await;
    let mut c = chat(&server, &tone_wav()).await;
    let r = c.alice.request(by_message(c.conversation, c.seq)).await;
    assert_eq!(code(r), ErrorCode::SpeechUnavailable);
    let r = c.bob.request(by_file(c.file_id, "zh")).await;
    assert_eq!(code(r), ErrorCode::SpeechUnavailable);
    no_event_within(&mut c.bob_events, 200, transcribed).await;
}

#[tokio::test]
async fn a_full_speech_queue_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let body = format!(
        "while [ ! -e {} ]; do sleep 0.02; done; echo done",
        gate.display()
    );
    let server = command_server(dir.path(), &body, 1, 1).await;
    let addr = server.addr();
    register(&addr, "erin").await;
    let (erin, _) = login(&addr, "erin", "phone").await;
    let file = upload(&erin, "tone.wav", "audio/wav", &tone_wav()).await;
    // One runs (waiting for the gate), one waits in the queue of one, the third is refused.
    let first = tokio::spawn({
        let e = erin.clone();
        async move { transcribe(&e, by_file(file, "")).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = tokio::spawn({
        let e = erin.clone();
        async move { transcribe(&e, by_file(file, "")).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(code(erin.request(by_file(file, "")).await), ErrorCode::Busy);
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(first.await.unwrap().text, "done");
    assert_eq!(second.await.unwrap().text, "done");
    // Served again once the queue drained.
    assert_eq!(transcribe(&erin, by_file(file, "")).await.text, "done");
}

/// A fake Baidu-style service: a token for any credentials, "你好" for any audio. One
/// request per connection.
fn fake_cloud() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut len = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let answer = if line.contains("/token") {
                r#"{"access_token":"t","expires_in":3600}"#
            } else {
                r#"{"err_no":0,"result":["你好"]}"#
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    base
}

#[tokio::test]
async fn each_language_goes_to_its_engine() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "echo english");
    let base = fake_cloud();
    let server = TestServer::start_with(move |c| {
        c.speech = SpeechConfig {
            engine: EngineKind::Command,
            command: program,
            languages: [("zh".to_owned(), EngineKind::Cloud)].into(),
            cloud_token_url: format!("{base}/oauth/2.0/token"),
            cloud_url: format!("{base}/server_api"),
            cloud_api_key: "key".into(),
            cloud_secret_key: "secret".into(),
            ..SpeechConfig::default()
        };
    })
    .await;
    let addr = server.addr();
    register(&addr, "jun").await;
    let (jun, _) = login(&addr, "jun", "phone").await;
    let file = upload(&jun, "tone.wav", "audio/wav", &tone_wav()).await;
    let zh = transcribe(&jun, by_file(file, "zh-CN")).await;
    assert_eq!((zh.text.as_str(), zh.engine.as_str()), ("你好", "cloud"));
    let en = transcribe(&jun, by_file(file, "en")).await;
    assert_eq!(
        (en.text.as_str(), en.engine.as_str()),
        ("english", "command")
    );
    let bad = jun.request(by_file(file, "zh;DROP")).await;
    assert_eq!(code(bad), ErrorCode::InvalidArgument);
}

/// PocketSphinx on real recordings, through the whole server.
#[cfg(feature = "pocketsphinx")]
mod pocketsphinx {
    use super::*;

    async fn server() -> TestServer {
        TestServer::start_with(|c| {
            c.dm_policy = feige_tests::DmPolicy::Anyone;
            c.speech = SpeechConfig {
                engine: EngineKind::Pocketsphinx,
                ..SpeechConfig::default()
            };
        })
        .await
    }

    fn flite_hello_world() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("hello.wav");
        let status = std::process::Command::new("flite")
            .args(["-voice", "kal16", "-t", "hello world", "-o"])
            .arg(&wav)
            .status()
            .expect("flite must be installed (Debian package flite)");
        assert!(status.success());
        std::fs::read(&wav).unwrap()
    }

    #[tokio::test]
    async fn a_flite_voice_note_and_the_goforward_recording_are_recognized() {
        let server = server().await;
        let mut c = chat(&server, &flite_hello_world()).await;
        let t = transcribe(&c.alice, by_message(c.conversation, c.seq)).await;
        assert_eq!(
            (t.text.as_str(), t.engine.as_str()),
            ("hello world", "pocketsphinx")
        );
        assert_eq!(
            next_event(&mut c.bob_events, transcribed).await.text,
            "hello world"
        );
        let raw = std::fs::read("/usr/share/pocketsphinx/test/data/goforward.raw")
            .expect("pocketsphinx-testdata must be installed");
        let file = upload(&c.bob, "goforward.raw", "audio/L16", &raw).await;
        let t = transcribe(&c.bob, by_file(file, "en")).await;
        assert_eq!(t.text, "go forward ten meters");
    }

    #[tokio::test]
    async fn a_missing_model_stops_the_server_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        let config = feige_server::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            http_listen: None,
            data_dir: dir.path().to_owned(),
            speech: SpeechConfig {
                engine: EngineKind::Pocketsphinx,
                pocketsphinx_hmm: dir.path().join("no-model"),
                ..SpeechConfig::default()
            },
            ..feige_server::Config::default()
        };
        let err = feige_server::Server::bind(config).await.unwrap_err();
        assert!(err.to_string().contains("no-model"), "{err}");
    }
}
