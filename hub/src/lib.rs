//! The GDX hub: the province or prefecture node that agents and child hubs
//! dial. This library holds everything `gdx-hub` does; `main.rs` only parses
//! arguments and maps errors to exit codes.
//!
//! - [`config`]: `hub.toml`, written with a comment on every key.
//! - [`store`]: the data directory's layout, `hub.db` (tokens, nodes,
//!   certificates) and the departments' vaults.
//! - [`init`]: creating a root hub (CA, hub identity, config).
//! - [`enrol`]: enrolment tokens and the enrolment service.
//! - [`net`]: the QUIC endpoint, the handshake policy, live connections,
//!   revocation, what a node's streams carry, and a child hub's link to its
//!   parent (`net::parent`).
//! - [`nodes`]: the `gdx-hub nodes` listing.
//! - [`catalog`]: the catalogue of the hub's subtree, search and freshness.
//! - [`audit`]: the tamper-evident audit log: entries from every store's outbox,
//!   signed checkpoints, cosigning, bundles (their verification is
//!   `gdx_common::audit`).
//! - [`base`]: base databases merged from member resources, with every
//!   field's provenance and the sources' disagreements (`bases.toml`).
//! - [`exchange`]: requests, grants, deliveries and lookups, and their
//!   store-and-forward between hubs.
//! - [`evaluation`]: 考核督促: indicators, scores and rankings of the
//!   departments per period, from what this hub observed; the report as
//!   text, XLSX, HTML and PDF.
//! - [`items`]: the 政务服务事项库: every department's 权责清单 kept here,
//!   searched, compared across levels by 基本编码, exported as XLSX.
//! - [`supervision`]: 监管信息共享: an enterprise's profile gathered by its
//!   统一社会信用代码 from every resource holding credit codes.
//! - [`cli`]: the bodies of the commands that read or change the data
//!   directory and print what they did.
//! - [`api`]: the HTTPS API (`/api/v1/catalog`) and server.
//! - [`portal`]: the data sharing portal in a browser, served with the API.
//! - [`dbservers`]: real PostgreSQL and MariaDB servers started in a
//!   directory of their own, for the demo and the tests.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod backup;
pub mod base;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dbservers;
pub mod enrol;
pub mod evaluation;
pub mod exchange;
pub mod init;
pub mod items;
pub mod metrics;
pub mod net;
pub mod nodes;
pub mod pair;
pub mod portal;
pub mod rollover;
pub mod store;
pub mod supervision;
pub mod util;

pub use config::HubConfig;
