//! How agents and child hubs reach a hub, the same way for both:
//!
//! - [`frames`]: one [`gdx_common::wire::Message`] at a time on a QUIC
//!   stream, QUIC errors in words, and [`frames::ask`]: one request on a
//!   stream of its own and its one answer, within a deadline.
//! - [`client`]: resolve and handshake within a deadline, and the one-shot
//!   enrolment exchange.
//! - [`backoff`]: how long to wait before dialling again, with jitter.
//! - [`renew`]: a renewed certificate asked for over a live connection.
//! - [`watch`]: a `Watch` kept open, so the hub tells the node at once that
//!   something arrived for it (protocol 3).
//! - [`metrics`]: the local address where Prometheus scrapes a node, and
//!   [`logs`]: its log lines, for people or as JSON.
//!
//! The TLS configurations come from `gdx-certs`; nothing here decides who
//! may connect.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod client;
pub mod frames;
pub mod logs;
pub mod metrics;
pub mod renew;
pub mod roots;
pub mod watch;

pub use backoff::Backoff;
