//! Being told at once: on a connection of protocol 3 or later, a `Watch`
//! kept open with the hub, answered with `Ring` when something arrived for
//! this node (or after about 20 s), and sent again at once. Each new count
//! wakes whoever waits on the [`Watching`]'s notify; a node of an older
//! hub keeps polling.

use std::sync::Arc;
use std::time::Duration;

use gdx_common::wire::{Message, PUSH};
use tokio::sync::Notify;

/// How long to wait for a `Ring` (the hub answers within about 20 s).
const RING_WITHIN: Duration = Duration::from_secs(60);

/// A `Watch` kept open on a connection, until dropped.
pub struct Watching {
    task: tokio::task::JoinHandle<()>,
    /// Notified each time the hub's count changes.
    pub rung: Arc<Notify>,
}

impl Watching {
    /// Whether the `Watch` is still kept (else the caller polls).
    pub fn alive(&self) -> bool {
        !self.task.is_finished()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps a `Watch` open on `conn`, or None when its protocol is older than
/// 3 (the caller polls). The first answer comes at once when the hub has
/// rung for this node since it started, so a watcher that was away looks
/// once on coming back. A watch that fails is logged and asked again (1 s,
/// then up to 30 s apart), the caller woken each time to look meanwhile;
/// the task ends with the connection.
pub fn watch(conn: &quinn::Connection, peer: &'static str) -> Option<Watching> {
    if crate::frames::protocol(conn) < PUSH {
        return None;
    }
    tracing::info!("watching {peer} for deliveries (gdx protocol 3): received as soon as they are stored");
    let rung = Arc::new(Notify::new());
    let (conn, notify) = (conn.clone(), rung.clone());
    let task = tokio::spawn(async move {
        let (mut seen, mut failures) = (0, 0u64);
        loop {
            let failed = match crate::frames::ask(&conn, &Message::Watch(seen), RING_WITHIN, peer).await {
                Ok(Message::Ring(count)) => {
                    failures = 0;
                    if count != seen {
                        seen = count;
                        notify.notify_one();
                    }
                    continue;
                }
                Ok(other) => format!("{peer} answered a watch with {}", other.kind()),
                Err(e) => e,
            };
            if conn.close_reason().is_some() {
                // the connection's own loop sees it closed and reconnects
                notify.notify_one();
                return;
            }
            failures += 1;
            tracing::warn!(error = %failed, "watching {peer} for deliveries failed; asking again");
            notify.notify_one();
            tokio::time::sleep(Duration::from_secs(failures.min(30))).await;
        }
    });
    Some(Watching { task, rung })
}
