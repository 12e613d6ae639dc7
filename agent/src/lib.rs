//! The GDX agent: it sits next to a department's database, holds the node's
//! key and certificate, and keeps one QUIC connection to its hub. This
//! library holds everything `gdx-agent` does; `main.rs` only parses
//! arguments and maps errors to exit codes.
//!
//! Layered without circles, each layer using only those listed before it:
//! - [`config`], [`identity`]: `agent.toml` and the files beside it; the
//!   node's credentials and signer.
//! - [`sources`]: reading SQLite tables and queries and CSV drop folders.
//! - [`state`]: `state.db`: the saved state, the outbox, what the daemon
//!   reports to `status`.
//! - scan: [`sync`] (change detection into signed, numbered changesets),
//!   [`keys`] (its key tables), [`catalog`] (declared catalogue entries:
//!   checked, versioned, staged).
//! - link: [`uplink`] (dial, hello), [`upload`] (publications and
//!   the outbox to the hub, exactly once), [`exchange`] (requests,
//!   decisions, lookups, receiving granted data), [`supervision`] (双告知
//!   notices, 联合惩戒 checks and feedback), [`enrol`].
//! - commands: [`syncer`] (`gdx-agent sync`, the scan and upload loops),
//!   [`daemon`] (`gdx-agent run`), [`report`] (`status` and `doctor`),
//!   [`login`] (`gdx-agent login`: a signed one-time portal link).
#![forbid(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod daemon;
pub mod enrol;
pub mod exchange;
pub mod identity;
pub mod keys;
pub mod login;
pub mod metrics;
pub mod renew;
pub mod report;
pub mod sources;
pub mod state;
pub mod supervision;
pub mod sync;
pub mod syncer;
pub mod uplink;
pub mod upload;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
