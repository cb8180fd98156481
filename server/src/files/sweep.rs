//! The upkeep of files: deletes the files nothing has used for `file_grace_ms`, the blobs no
//! file holds, and uploads older than `upload_ttl_ms`, then removes their bytes from disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Shared;

/// Rows deleted per sweep step; a step that hits it runs again at once.
const STEP: usize = 256;

/// Sweeps every `file_sweep_ms` until the server stops (the caller aborts the task).
pub(crate) async fn sweep_unused(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(shared.config.file_sweep_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Err(e) = stray_partials(&shared).await {
        tracing::warn!(error = %e, "removing stray partial files failed");
    }
    loop {
        tick.tick().await;
        loop {
            match sweep_once(&shared).await {
                Ok(n) if n >= STEP => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "sweeping unused files failed");
                    break;
                }
            }
        }
    }
}

/// One step: the rows in one writer job, then the unlinks on the file pool, under the
/// `place` lock so that an upload storing the same bytes meanwhile waits.
async fn sweep_once(shared: &Shared) -> Result<usize, crate::error::RequestError> {
    let grace = i64::try_from(shared.config.file_grace_ms).unwrap_or(i64::MAX / 4);
    let ttl = i64::try_from(shared.config.upload_ttl_ms).unwrap_or(i64::MAX / 4);
    let _place = shared.files.place.write().await;
    let swept = shared
        .writer
        .call(move |c| feige_storage::blobs::sweep(c, feige_storage::now_ms(), grace, ttl, STEP))
        .await?;
    let n = swept.blobs.len().max(swept.uploads.len());
    if n == 0 {
        return Ok(0);
    }
    let mut paths: Vec<PathBuf> = swept
        .blobs
        .iter()
        .map(|(sha, _)| shared.files.blob_path(sha))
        .collect();
    paths.extend(swept.uploads.iter().map(|&id| shared.files.upload_path(id)));
    for &id in &swept.uploads {
        shared.files.running.forget(id);
    }
    tracing::debug!(
        blobs = swept.blobs.len(),
        uploads = swept.uploads.len(),
        "swept files"
    );
    // The rows are gone: the bytes must go too, on a blocking thread if the pool is full.
    let again = paths.clone();
    if shared
        .files
        .pool
        .run(0, move |()| super::disk::remove(&paths))
        .await
        .is_err()
    {
        let _ = tokio::task::spawn_blocking(move || super::disk::remove(&again)).await;
    }
    Ok(n)
}

/// At start: removes partial files that no upload row names (a crash between a sweep's
/// commit and its unlinks, or a thumbnail being written). Every live upload's row was
/// committed before its first chunk, so nothing in use is taken.
async fn stray_partials(shared: &Shared) -> Result<(), crate::error::RequestError> {
    let dir = shared.files.uploads_dir();
    let names = shared
        .files
        .pool
        .run(0, move |()| match std::fs::read_dir(&dir) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect::<Vec<PathBuf>>(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the partial uploads");
                Vec::new()
            }
        })
        .await?;
    let ids: Vec<(PathBuf, Option<u64>)> = names
        .into_iter()
        .map(|p| {
            let id = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok());
            (p, id)
        })
        .collect();
    let known: Vec<u64> = ids.iter().filter_map(|(_, id)| *id).collect();
    let live = shared
        .store
        .read(move |c| feige_storage::blobs::live_uploads(c, &known))
        .await?;
    let stray: Vec<PathBuf> = ids
        .into_iter()
        .filter(|(_, id)| id.is_none_or(|id| live.binary_search(&id).is_err()))
        .map(|(p, _)| p)
        .collect();
    if !stray.is_empty() {
        tracing::info!(n = stray.len(), "removing stray partial files");
        shared
            .files
            .pool
            .run(0, move |()| super::disk::remove(&stray))
            .await?;
    }
    Ok(())
}
