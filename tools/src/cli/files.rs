//! `feige upload`, `download`, `send-file`, `avatar`, `transcribe`, `stickers` and `offer`:
//! file transfers with a progress bar on stderr (only when stdout is a terminal and without
//! --json), the file message, the avatar, speech-to-text, stickers and file offers.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use feige_client::{
    kind_for_mime, mime_for_path, pb, CancellationToken, Progress, Recipient, TranscribeTarget,
};
use feige_tools::hex_encode;
use feige_tools::social::{self as out, Out};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::args::{DownloadArgs, MessageAt, SendFileArgs, StickerCmd, TranscribeArgs, UploadArgs};
use super::receipts::conversation;
use super::{user_id, with_client, Ctx};

impl Ctx {
    /// A progress bar for a transfer: drawn on stderr when stdout is a terminal and the
    /// output is not JSON, else hidden (scripts and pipes get only the result).
    fn progress_bar(&self, what: &str) -> ProgressBar {
        if self.cli.json || !std::io::stdout().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

/// The progress callback that moves `bar`.
fn follow(bar: &ProgressBar) -> impl FnMut(Progress) + Send + 'static {
    let bar = bar.clone();
    move |p: Progress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    }
}

/// Uploads `path` with a progress bar.
async fn upload_with_bar(
    ctx: &Ctx,
    client: &feige_client::Client,
    path: &Path,
    mime: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<feige_client::Uploaded> {
    let bar = ctx.progress_bar("upload");
    let result = client
        .upload_file(path, mime, name, follow(&bar), &CancellationToken::new())
        .await
        .with_context(|| format!("cannot upload {}", path.display()));
    bar.finish_and_clear();
    result
}

/// The JSON and line of an uploaded file.
fn uploaded_out(up: &feige_client::Uploaded) -> Out {
    let f = &up.file;
    Out {
        json: json!({
            "type": "uploaded",
            "file_id": f.file_id.to_string(),
            "name": f.name,
            "size": f.size,
            "mime": f.mime,
            "sha256": hex_encode(&f.sha256),
            "deduplicated": up.deduplicated,
        }),
        text: format!(
            "file {}: {} ({} bytes, {}){}",
            f.file_id,
            f.name,
            f.size,
            f.mime,
            if up.deduplicated {
                ", already on the server"
            } else {
                ""
            }
        ),
    }
}

/// `feige upload`: prints the file id.
pub(crate) async fn upload(ctx: &Ctx, a: &UploadArgs) -> anyhow::Result<()> {
    let up = with_client(ctx, |c| async move {
        upload_with_bar(ctx, &c, &a.path, a.mime.as_deref(), a.name.as_deref()).await
    })
    .await?;
    ctx.out(&uploaded_out(&up));
    Ok(())
}

/// `feige download`.
pub(crate) async fn download(ctx: &Ctx, a: &DownloadArgs) -> anyhow::Result<()> {
    let got = with_client(ctx, |c| async move {
        let bar = ctx.progress_bar("download");
        let result = c
            .download_file(
                a.file_id,
                &a.path,
                a.offset,
                a.length.unwrap_or(0),
                follow(&bar),
                &CancellationToken::new(),
            )
            .await
            .with_context(|| format!("cannot download file {}", a.file_id));
        bar.finish_and_clear();
        result
    })
    .await?;
    ctx.out(&Out {
        json: json!({
            "type": "downloaded",
            "file_id": got.file.file_id.to_string(),
            "name": got.file.name,
            "size": got.size,
            "path": got.path.to_string_lossy(),
        }),
        text: format!(
            "file {} ({}): {} bytes written to {}",
            got.file.file_id,
            got.file.name,
            got.size,
            got.path.display()
        ),
    });
    Ok(())
}

/// The kind named `--kind`, or the one of `mime`.
fn message_kind(kind: Option<&str>, mime: &str) -> anyhow::Result<pb::MessageKind> {
    Ok(match kind {
        None => kind_for_mime(mime),
        Some("image") => pb::MessageKind::Image,
        Some("file") => pb::MessageKind::File,
        Some("voice") => pb::MessageKind::Voice,
        Some("video") => pb::MessageKind::Video,
        Some(other) => anyhow::bail!(feige_tools::Failure::new(
            "INVALID_ARGUMENT",
            format!("--kind {other:?}: give image, file, voice or video"),
        )),
    })
}

/// `feige send-file`: uploads, then sends the file message.
pub(crate) async fn send_file(ctx: &Ctx, a: &SendFileArgs) -> anyhow::Result<()> {
    let mime = a
        .mime
        .clone()
        .unwrap_or_else(|| mime_for_path(&a.path).to_owned());
    let kind = message_kind(a.kind.as_deref(), &mime)?;
    let (up, ok) = with_client(ctx, |c| async move {
        let to = recipient(&c, &a.who, a.group).await?;
        let up = upload_with_bar(ctx, &c, &a.path, Some(&mime), None).await?;
        let ok = c
            .send_file(to, kind, up.file.file_id, &a.caption, a.offer)
            .await?;
        Ok((up, ok))
    })
    .await?;
    ctx.out(&Out {
        json: json!({
            "type": "sent",
            "message_id": ok.message_id.to_string(),
            "conversation_id": ok.conversation_id.to_string(),
            "seq": ok.seq.to_string(),
            "sent_at": ok.sent_at_ms.to_string(),
            "duplicate": ok.duplicate,
            "file_id": up.file.file_id.to_string(),
            "deduplicated": up.deduplicated,
        }),
        text: format!(
            "sent file {} ({}): [conv {} #{}] message {}",
            up.file.file_id, up.file.name, ok.conversation_id, ok.seq, ok.message_id
        ),
    });
    Ok(())
}

/// `feige avatar`: prints the new profile.
pub(crate) async fn avatar(ctx: &Ctx, path: &Path) -> anyhow::Result<()> {
    let profile = with_client(ctx, |c| async move {
        let up = upload_with_bar(ctx, &c, path, None, None).await?;
        Ok(c.update_profile(pb::UpdateProfile {
            avatar: Some(up.file.file_id.to_string()),
            ..Default::default()
        })
        .await?)
    })
    .await?;
    ctx.out(&out::profile(&profile));
    Ok(())
}

/// `feige transcribe`: prints the text.
pub(crate) async fn transcribe(ctx: &Ctx, a: &TranscribeArgs) -> anyhow::Result<()> {
    let t = with_client(ctx, |c| async move {
        let target = match (&a.target, a.seq, a.file) {
            (_, _, Some(file)) => TranscribeTarget::File(file),
            (Some(target), Some(seq), None) => {
                let at = MessageAt {
                    target: target.clone(),
                    seq,
                    conversation: a.conversation,
                };
                TranscribeTarget::Message {
                    conversation_id: conversation(&c, &at).await?,
                    seq,
                }
            }
            _ => anyhow::bail!(feige_tools::Failure::new(
                "INVALID_ARGUMENT",
                "give USER|CONVERSATION SEQ, or --file FILE_ID",
            )),
        };
        Ok(c.transcribe(target, &a.language).await?)
    })
    .await?;
    ctx.out(&Out {
        json: json!({
            "type": "transcript",
            "text": t.text,
            "engine": t.engine,
            "conversation_id": t.conversation_id.to_string(),
            "seq": t.seq.to_string(),
        }),
        text: t.text.clone(),
    });
    Ok(())
}

/// The recipient `who` names (a user, or with `group` a group id).
async fn recipient(c: &feige_client::Client, who: &str, group: bool) -> anyhow::Result<Recipient> {
    Ok(if group {
        let id = who
            .parse()
            .with_context(|| format!("{who:?} is not a group id"))?;
        Recipient::Conversation(id)
    } else {
        Recipient::User(user_id(c, who).await?)
    })
}

/// `feige stickers`: lists (after a change, what is left), one line or object each; `send`
/// prints the sent message.
pub(crate) async fn stickers(ctx: &Ctx, action: Option<&StickerCmd>) -> anyhow::Result<()> {
    if let Some(StickerCmd::Send {
        who,
        file_id,
        group,
    }) = action
    {
        let ok = with_client(ctx, |c| async move {
            let to = recipient(&c, who, *group).await?;
            Ok(
                c.send_file(to, pb::MessageKind::Sticker, *file_id, "", false)
                    .await?,
            )
        })
        .await?;
        ctx.out(&Out {
            json: json!({
                "type": "sent",
                "message_id": ok.message_id.to_string(),
                "conversation_id": ok.conversation_id.to_string(),
                "seq": ok.seq.to_string(),
                "file_id": file_id.to_string(),
            }),
            text: format!(
                "sent sticker {file_id}: [conv {} #{}] message {}",
                ok.conversation_id, ok.seq, ok.message_id
            ),
        });
        return Ok(());
    }
    let list = with_client(ctx, |c| async move {
        Ok(match action {
            Some(StickerCmd::Add { file_id }) => c.add_sticker(*file_id).await?,
            Some(StickerCmd::Remove { file_id }) => c.remove_sticker(*file_id).await?,
            _ => c.stickers().await?,
        })
    })
    .await?;
    for f in &list {
        ctx.out(&Out {
            json: json!({
                "type": "sticker",
                "file_id": f.file_id.to_string(),
                "name": f.name,
                "size": f.size,
                "width": f.width,
                "height": f.height,
            }),
            text: format!(
                "sticker {}: {} ({}x{})",
                f.file_id, f.name, f.width, f.height
            ),
        });
    }
    Ok(())
}

/// `feige offer`: answers a file offer.
pub(crate) async fn offer(ctx: &Ctx, at: &MessageAt, accept: bool) -> anyhow::Result<()> {
    let o = with_client(ctx, |c| async move {
        let conv = conversation(&c, at).await?;
        Ok(c.answer_file_offer(conv, at.seq, accept).await?)
    })
    .await?;
    let state = match pb::FileOfferState::try_from(o.state) {
        Ok(pb::FileOfferState::Accepted) => "accepted",
        Ok(pb::FileOfferState::Declined) => "declined",
        Ok(pb::FileOfferState::Pending) => "pending",
        _ => "none",
    };
    ctx.out(&Out {
        json: json!({
            "type": "file_offer",
            "conversation_id": o.conversation_id.to_string(),
            "seq": o.seq.to_string(),
            "state": state,
        }),
        text: format!(
            "offer #{} of conversation {}: {state}",
            o.seq, o.conversation_id
        ),
    });
    Ok(())
}
