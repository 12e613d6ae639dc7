//! The lease on the hub's background work. With its stores on PostgreSQL a
//! hub may run as two processes on two machines: both serve agents, child
//! hubs and the portal, but delivery production, 双告知 notices, the parent
//! link and audit checkpoints run in one of them at a time, the one that
//! holds the lease.
//!
//! The lease is a session-level advisory lock named for the hub, held on a
//! connection of its own and checked twice a second. A process that dies
//! loses it with its connection (the server sees the socket close), and the
//! other process takes it within a second. A cut to the database ends the
//! connection within the pool's keepalive limit (about a minute); the
//! process lets go as soon as a check fails, never later than the server.
//! With SQLite files there is one process, which always holds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{HubConfig, StoreConfig};
use crate::store::pg::pool::PgPool;

/// How often the holder checks its connection, and a waiting process tries.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Whether this process holds the lease; cheap to clone into every task.
#[derive(Clone)]
pub struct Lease {
    held: watch::Receiver<bool>,
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
            let (_, held) = watch::channel(true);
            return Ok((Lease { held }, None));
        };
        let pool = PgPool::new(url_file, ca_file.as_deref(), 1)?;
        let name = lock_name(&config.hub_id().to_string());
        let (tx, held) = watch::channel(false);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("gdx-lease".into())
                .spawn(move || keep(&pool, &name, &tx, &stop))
                .map_err(|e| format!("cannot start the lease's thread: {e}"))?
        };
        Ok((Lease { held }, Some(Keeper { stop, thread: Some(thread) })))
    }

    /// True while this process holds the lease.
    pub fn held(&self) -> bool {
        *self.held.borrow()
    }

    /// Returns once this process holds the lease (never, once its keeper
    /// stopped without it).
    pub async fn acquired(&mut self) {
        if self.held.wait_for(|h| *h).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Returns once this process no longer holds the lease (never with
    /// SQLite files, whose one process holds it for good).
    pub async fn lost(&mut self) {
        if self.held.wait_for(|h| !*h).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits up to `limit` for the lease; true when held.
    pub async fn wait(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.acquired()).await.is_ok()
    }
}

/// The advisory lock's name for hub `id`.
fn lock_name(id: &str) -> String {
    format!("gdx-hub lease {id}")
}

/// Takes the lease when free and holds it until `stop`, telling `tx`.
fn keep(pool: &PgPool, name: &str, tx: &watch::Sender<bool>, stop: &AtomicBool) {
    let mut said_down = false;
    while !stop.load(Ordering::Relaxed) {
        let mut conn = match pool.take() {
            Ok(c) => c,
            Err(e) => {
                if !said_down {
                    warn!(error = %e, "the lease on background work cannot be taken: the database is unreachable");
                    said_down = true;
                }
                std::thread::sleep(CHECK_EVERY);
                continue;
            }
        };
        said_down = false;
        let mut held = false;
        while !stop.load(Ordering::Relaxed) {
            let checked = if held {
                conn.client.simple_query("SELECT 1").map(|_| true)
            } else {
                conn.client
                    .query_one("SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1))", &[&name])
                    .map(|r| r.get::<_, bool>(0))
            };
            match checked {
                Ok(now_held) => {
                    if now_held && !held {
                        info!(
                            "this process holds the lease: it produces deliveries, links to the parent and signs checkpoints"
                        );
                        tx.send_replace(true);
                    }
                    held = now_held;
                }
                Err(e) => {
                    if held {
                        warn!(error = %crate::store::pg::pool::describe(&e), "the lease on background work is lost with its database connection");
                        tx.send_replace(false);
                    }
                    held = false;
                    break;
                }
            }
            std::thread::sleep(CHECK_EVERY);
        }
        if stop.load(Ordering::Relaxed) {
            // let go before the connection closes, so that the other process need not wait for the server
            if held {
                let _ = conn.client.simple_query("SELECT pg_catalog.pg_advisory_unlock_all()");
                tx.send_replace(false);
            }
            pool.give_back(conn);
            return;
        }
        pool.discard(conn);
    }
}

/// True when no other process holds the lease of hub `config` after a
/// moment's grace: this process is the hub's last one running. Always
/// true with SQLite files. Blocking.
pub fn alone(config: &HubConfig) -> bool {
    let Some(StoreConfig::Postgres { url_file, ca_file }) = config.postgres() else { return true };
    let Ok(pool) = PgPool::new(url_file, ca_file.as_deref(), 1) else { return false };
    // the other process tries twice a second
    std::thread::sleep(3 * CHECK_EVERY);
    let Ok(mut conn) = pool.take() else { return false };
    let name = lock_name(&config.hub_id().to_string());
    let free = conn
        .client
        .query_one("SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext($1))", &[&name])
        .is_ok_and(|r| r.get::<_, bool>(0));
    if free {
        let _ = conn.client.simple_query("SELECT pg_catalog.pg_advisory_unlock_all()");
    }
    pool.give_back(conn);
    free
}
