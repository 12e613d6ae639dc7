//! GDX's pure core: the domain model (divisions, node ids, roles), the
//! national standards' checks, catalogue entries, rows and changesets and
//! their keys, the grant state machine, the enrolment token, the audit
//! log's Merkle tree and offline verification, and the wire protocol with
//! its frame codec.
//!
//! Nothing here touches a socket, a file or a clock: functions that need the
//! time take `now` as an argument. That keeps every rule unit-testable and
//! lets the hub and the agent stay thin shells around it.
#![forbid(unsafe_code)]

pub mod admission;
pub mod audit;
pub mod catalog;
pub mod creditcode;
pub mod data;
pub mod discipline;
pub mod division;
pub mod evaluation;
pub mod generate;
pub mod geometry;
pub mod grant;
pub mod idnumber;
pub mod items;
pub mod key;
pub mod login;
pub mod merkle;
pub mod node;
pub mod notice;
pub mod relay;
pub mod renewal;
pub mod route;
pub mod table;
pub mod token;
pub mod units;
pub mod wire;

pub use division::{DivisionCode, DivisionLevel};
pub use node::{NodeId, Role};
