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
/// once on coming back. The task ends when the connection fails.
pub fn watch(conn: &quinn::Connection, peer: &'static str) -> Option<Watching> {
    if crate::frames::protocol(conn) < PUSH {
        return None;
    }
    let rung = Arc::new(Notify::new());
    let (conn, notify) = (conn.clone(), rung.clone());
    let task = tokio::spawn(async move {
        let mut seen = 0;
        loop {
            match crate::frames::ask(&conn, &Message::Watch(seen), RING_WITHIN, peer).await {
                Ok(Message::Ring(count)) => {
                    if count != seen {
                        seen = count;
                        notify.notify_one();
                    }
                }
                // the connection's own loop sees it fail and reconnects
                Ok(_) | Err(_) => return,
            }
        }
    });
    Some(Watching { task, rung })
}
