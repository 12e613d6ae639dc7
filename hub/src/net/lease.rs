//! The lease on the hub's background work. With its stores on PostgreSQL a
//! hub may run as two processes on two machines: both serve agents, child
//! hubs and the portal, but delivery production, 双告知 notices, the parent
//! link and audit checkpoints run in one of them at a time, the one that
//! holds the lease.
//!
//! The lease is a session-level advisory lock named for the hub, held on a
//! connection of its own and checked twice a second. The server ends that
//! session when it has heard nothing for [`SERVER_GIVES_UP`] (a process
//! killed, stopped or cut off, a machine lost), freeing the lock for the
//! other process; the holder itself lets go once its check has gone
//! unanswered for [`HOLDER_GIVES_UP`], which is shorter, so that two
//! processes never both believe they hold it. With SQLite files there is
//! one process, which always holds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{HubConfig, StoreConfig};
use crate::store::pg::pool::{PgConn, PgPool, describe};

/// How often the holder checks its connection, and a waiting process tries.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long the holder waits on a check before it lets go.
const HOLDER_GIVES_UP: Duration = Duration::from_secs(3);
/// How long the server keeps a silent lease session (and so the lock).
const SERVER_GIVES_UP: &str = "6s";
/// The first key of the lease's two-key advisory lock, apart from the
/// one-key locks of the stores.
const LOCK_CLASS: i32 = 0x6764_6c65;

/// Where this process stands towards the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Not asked yet.
    Unknown,
    Held,
    /// Another process of the hub holds it.
    Elsewhere,
    /// The database cannot be reached to ask.
    Unreachable,
}

/// Whether this process holds the lease, and how many times it took it;
/// cheap to clone into every task.
#[derive(Clone)]
pub struct Lease {
    state: watch::Receiver<(Standing, u64)>,
}

/// The thread that keeps the lease; dropping it lets go at once.
pub struct Keeper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Lease {
    /// The lease of the hub `config` describes: held for ever with SQLite
    /// files, kept by a thread of its own with PostgreSQL.
    pub fn start(config: &HubConfig) -> Result<(Lease, Option<Keeper>), String> {
        let Some(StoreConfig::Postgres { url_file, ca_file }) = config.postgres() else {
            let (_, state) = watch::channel((Standing::Held, 1));
            return Ok((Lease { state }, None));
        };
        let pool = PgPool::new(url_file, ca_file.as_deref(), 1)?.impatient(HOLDER_GIVES_UP);
        let name = lock_name(&config.hub_id().to_string());
        let (tx, state) = watch::channel((Standing::Unknown, 0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("gdx-lease".into())
                .spawn(move || keep(&pool, &name, &tx, &stop))
                .map_err(|e| format!("cannot start the lease's thread: {e}"))?
        };
        Ok((Lease { state }, Some(Keeper { stop, thread: Some(thread) })))
    }

    /// True while this process holds the lease.
    pub fn held(&self) -> bool {
        self.state.borrow().0 == Standing::Held
    }

    /// How often this process has taken the lease: a task that saw one
    /// number and finds another lost it in between.
    pub fn taken(&self) -> u64 {
        self.state.borrow().1
    }

    /// Where this process stands once it has asked, waiting up to `limit`.
    pub async fn standing(&mut self, limit: Duration) -> Standing {
        let asked = tokio::time::timeout(limit, self.state.wait_for(|s| s.0 != Standing::Unknown)).await;
        asked.ok().and_then(|s| s.ok().map(|s| s.0)).unwrap_or(Standing::Unknown)
    }

    /// Returns once this process holds the lease, with the number of that
    /// taking (never, once its keeper stopped without it).
    pub async fn acquired(&mut self) -> u64 {
        // the value is copied out: a borrow of the channel must not be held across an await
        let got = self.state.wait_for(|s| s.0 == Standing::Held).await.map(|s| s.1);
        match got {
            Ok(taken) => taken,
            Err(_) => std::future::pending().await,
        }
    }

    /// Returns once the taking numbered `taken` has ended (never with
    /// SQLite files, whose one process holds it for good).
    pub async fn lost(&mut self, taken: u64) {
        let ended = self.state.wait_for(|s| s.0 != Standing::Held || s.1 != taken).await.is_ok();
        if !ended {
            std::future::pending::<()>().await;
        }
    }
}

/// The advisory lock's name for hub `id`.
fn lock_name(id: &str) -> String {
    format!("gdx-hub lease {id}")
}

/// Takes the lease when free and holds it until `stop`, telling `tx`.
fn keep(pool: &PgPool, name: &str, tx: &watch::Sender<(Standing, u64)>, stop: &AtomicBool) {
    let mut taken = 0;
    let tell = |standing: Standing, taken: u64| {
        tx.send_if_modified(|s| {
            let changed = *s != (standing, taken);
            *s = (standing, taken);
            changed
        });
    };
    while !stop.load(Ordering::Relaxed) {
        let asked = pool.take().and_then(|mut c| match prepare(&mut c) {
            Ok(()) => Ok(c),
            Err(e) => {
                pool.discard(c);
                Err(e)
            }
        });
        let mut conn = match asked {
            Ok(c) => c,
            Err(e) => {
                if tx.borrow().0 != Standing::Unreachable {
                    warn!(error = %e, "the lease on background work cannot be asked for: the database is unreachable");
                }
                tell(Standing::Unreachable, taken);
                std::thread::sleep(CHECK_EVERY);
                continue;
            }
        };
        let mut held = false;
        while !stop.load(Ordering::Relaxed) {
            let checked = if held {
                conn.client.simple_query("SELECT 1").map(|_| true)
            } else {
                conn.client
                    .query_one(
                        "SELECT pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2))",
                        &[&LOCK_CLASS, &name],
                    )
                    .map(|r| r.get::<_, bool>(0))
            };
            match checked {
                Ok(true) if !held => {
                    held = true;
                    taken += 1;
                    info!(
                        "this process holds the lease: it produces deliveries, links to the parent and signs checkpoints"
                    );
                    tell(Standing::Held, taken);
                }
                Ok(true) => {}
                Ok(false) => tell(Standing::Elsewhere, taken),
                Err(e) => {
                    if held {
                        warn!(error = %describe(&e), "the lease on background work is lost with its database connection");
                    }
                    tell(Standing::Unreachable, taken);
                    break;
                }
            }
            std::thread::sleep(CHECK_EVERY);
        }
        if stop.load(Ordering::Relaxed) {
            // let go before the connection closes, so that the other process need not wait for the server
            if held {
                let _ = conn.client.simple_query("SELECT pg_catalog.pg_advisory_unlock_all()");
                tell(Standing::Elsewhere, taken);
            }
            pool.give_back(conn);
            return;
        }
        pool.discard(conn);
        // a moment before asking again, so that every task sees the loss
        std::thread::sleep(CHECK_EVERY);
    }
}

/// The lease's session: the server ends it, and frees the lock, when the
/// holder has gone silent.
fn prepare(conn: &mut PgConn) -> Result<(), String> {
    conn.client
        .batch_execute(&format!(
            "SET idle_session_timeout = '{SERVER_GIVES_UP}'; SET tcp_keepalives_idle = 1;
             SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3"
        ))
        .map_err(|e| describe(&e))
}

/// True when no other process holds the lease of hub `config` after a
/// moment's grace: this process is the hub's last one running. Always
/// true with SQLite files. Blocking.
pub fn alone(config: &HubConfig) -> bool {
    let Some(StoreConfig::Postgres { url_file, ca_file }) = config.postgres() else { return true };
    let Ok(pool) = PgPool::new(url_file, ca_file.as_deref(), 1).map(|p| p.impatient(HOLDER_GIVES_UP)) else {
        return false;
    };
    // the other process tries twice a second
    std::thread::sleep(3 * CHECK_EVERY);
    let Ok(mut conn) = pool.take() else { return false };
    let name = lock_name(&config.hub_id().to_string());
    let free = conn
        .client
        .query_one("SELECT pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2))", &[&LOCK_CLASS, &name])
        .is_ok_and(|r| r.get::<_, bool>(0));
    if free {
        let _ = conn.client.simple_query("SELECT pg_catalog.pg_advisory_unlock_all()");
    }
    pool.give_back(conn);
    free
}
