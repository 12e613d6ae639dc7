//! The GDX agent: it sits next to a department's database, holds the node's
//! key and certificate, and keeps one QUIC connection to its hub. This
//! library holds everything `gdx-agent` does; `main.rs` only parses
//! arguments and maps errors to exit codes.
//!
//! - [`config`]: `agent.toml` and the files beside it.
//! - [`enrol`]: `gdx-agent enroll`: key, CSR, pinned CA, certificate.
//! - [`state`]: `state.db`, what the daemon reports to `status`.
//! - [`uplink`]: the connection to the hub: dial, hello, reconnect with backoff.
//! - [`sources`]: reading SQLite tables and queries and CSV drop folders.
//! - [`sync`]: change detection into signed, numbered changesets.
//! - [`catalog`]: declared catalogue entries: checked, versioned, published.
//! - [`upload`]: draining the outbox to the hub, exactly once.
//! - [`syncer`]: `gdx-agent sync` and the daemon's scan and upload loops.
//! - [`exchange`]: requests, decisions, lookups, and receiving granted data.
//! - [`report`]: `status` and `doctor`.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod enrol;
pub mod exchange;
pub mod keys;
pub mod report;
pub mod sources;
pub mod state;
pub mod sync;
pub mod syncer;
pub mod uplink;
pub mod upload;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
