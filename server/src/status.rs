//! What the operations endpoints answer, apart from HTTP: the status, the metrics' gauges,
//! the health check and the online backup. Everything that touches files or SQLite runs on
//! the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use feige_storage::backup::{BackupReport, DATABASES};
use feige_storage::StorageError;
use serde_json::{json, Value};

use crate::metrics::text::{self, Gauges};
use crate::Shared;

/// How long the store has to answer the health check's read.
pub(crate) const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

/// The gauges read at scrape time; the database size is read on the blocking pool.
pub(crate) async fn gauges(shared: &Shared) -> Gauges {
    let dir = shared.config.data_dir.clone();
    let ws = shared.ws_connections.load(Ordering::Relaxed);
    let db_bytes = tokio::task::spawn_blocking(move || db_bytes(&dir))
        .await
        .unwrap_or(0);
    Gauges {
        tcp_connections: shared.accept.tcp_open(&shared.conn_slots, ws) as u64,
        ws_connections: ws as u64,
        users_online: shared.sessions.users_online() as u64,
        writer_queue: shared.writer.queue_len() as u64,
        router_queue: shared.metrics.router.queued.load(Ordering::Relaxed) as u64,
        files_bytes: shared.files.pool.held_bytes() as u64,
        speech_jobs: shared.speech.jobs() as u64,
        db_bytes,
    }
}

/// The Prometheus exposition of every metric.
pub(crate) async fn metrics_text(shared: &Shared) -> String {
    let g = gauges(shared).await;
    text::render(&shared.metrics, shared.writer.stats(), &g)
}

/// The server status: the `data` of `GET /admin/api/status`.
pub(crate) async fn status(shared: &Shared) -> Value {
    let g = gauges(shared).await;
    json!({
        "uptime_s": shared.metrics.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "connections": { "tcp": g.tcp_connections, "ws": g.ws_connections },
        "users_online": g.users_online,
        "messages_per_s": (shared.metrics.rate.per_second() * 10.0).round() / 10.0,
        "queues": {
            "writer": g.writer_queue,
            "router": g.router_queue,
            "files_bytes": g.files_bytes,
            "speech": g.speech_jobs,
        },
        "db_bytes": g.db_bytes,
    })
}

/// Whether the store answers a read within [`HEALTH_DEADLINE`].
pub(crate) async fn healthy(shared: &Shared) -> bool {
    let read = shared.store.read(|c| {
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(StorageError::from)
    });
    answered(HEALTH_DEADLINE, read).await
}

/// Whether `fut` succeeds within `deadline`.
async fn answered<T, E>(
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> bool {
    matches!(tokio::time::timeout(deadline, fut).await, Ok(Ok(_)))
}

/// Samples the stored-messages counter once a second, for messages per second.
pub(crate) async fn sample_rates(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let stored = shared.writer.stats().messages.load(Ordering::Relaxed);
        shared.metrics.rate.sample(Instant::now(), stored);
    }
}

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupError {
    /// Another backup is running.
    #[error("a backup is already running")]
    Running,
    /// The path is not one a backup may go to.
    #[error("{0}")]
    BadPath(String),
    /// Copying failed.
    #[error("backup failed: {0}")]
    Failed(#[from] StorageError),
}

/// Backs up every database into `path` (absolute, or relative to `<data_dir>/backups`;
/// default `<data_dir>/backups/<UTC timestamp>`), one backup at a time, on the blocking pool.
pub(crate) async fn backup(
    shared: &Shared,
    path: Option<&str>,
) -> Result<BackupReport, BackupError> {
    let Ok(_one) = shared.backup_lock.try_lock() else {
        return Err(BackupError::Running);
    };
    let data_dir = shared.config.data_dir.clone();
    let out = backup_dir(&data_dir, path, feige_storage::now_ms())?;
    tokio::task::spawn_blocking(move || feige_storage::backup::backup(&data_dir, &out))
        .await
        .map_err(|_| BackupError::Failed(StorageError::WorkerGone))?
        .map_err(BackupError::from)
}

/// Where a backup goes; see [`backup`]. A path with `..` is refused.
pub(crate) fn backup_dir(
    data_dir: &Path,
    path: Option<&str>,
    now_ms: i64,
) -> Result<PathBuf, BackupError> {
    let base = data_dir.join("backups");
    let Some(p) = path.filter(|p| !p.is_empty()) else {
        return Ok(base.join(utc_stamp(now_ms)));
    };
    let p = Path::new(p);
    if p.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(BackupError::BadPath("path: no `..` allowed".into()));
    }
    Ok(if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    })
}

/// Bytes of the database files in `dir`, with their WAL and shared-memory files.
pub(crate) fn db_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for db in DATABASES {
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(m) = std::fs::metadata(dir.join(format!("{db}{suffix}"))) {
                total += m.len();
            }
        }
    }
    total
}

/// `YYYYMMDDTHHMMSSZ` for a time in milliseconds since the Unix epoch.
pub(crate) fn utc_stamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Healthy means an answer, in time, and not an error.
    #[tokio::test(start_paused = true)]
    async fn health_needs_a_timely_answer() {
        assert!(answered(HEALTH_DEADLINE, async { Ok::<_, ()>(1) }).await);
        assert!(!answered(HEALTH_DEADLINE, async { Err::<(), _>(()) }).await);
        let stuck = std::future::pending::<Result<(), ()>>();
        assert!(!answered(HEALTH_DEADLINE, stuck).await);
        let slow = async {
            tokio::time::sleep(HEALTH_DEADLINE * 2).await;
            Ok::<_, ()>(())
        };
        assert!(!answered(HEALTH_DEADLINE, slow).await);
    }

    /// Known instants, including a leap day and the epoch.
    #[test]
    fn stamps_are_utc() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400_000), "20000229T000000Z");
        assert_eq!(utc_stamp(1_796_606_999_000), "20261207T012959Z");
    }

    /// The default goes under `backups/`, a relative path too; `..` is refused.
    #[test]
    fn backup_paths() {
        let d = Path::new("/srv/feige");
        let at = backup_dir(d, None, 0).unwrap();
        assert_eq!(at, Path::new("/srv/feige/backups/19700101T000000Z"));
        assert_eq!(
            backup_dir(d, Some("nightly"), 0).unwrap(),
            Path::new("/srv/feige/backups/nightly")
        );
        assert_eq!(
            backup_dir(d, Some("/mnt/b"), 0).unwrap(),
            Path::new("/mnt/b")
        );
        assert!(matches!(
            backup_dir(d, Some("../x"), 0),
            Err(BackupError::BadPath(_))
        ));
    }
}
