//! What agents report of their scans' quarantine (`Quality` messages), in
//! `hub.db`: per node and resource, the last report — when, how many rows
//! were read and set aside, and the first places and reasons — so the
//! operator sees data-quality problems per department (`gdx-hub nodes`, the
//! portal's tree). The newest report of a resource is kept whole, and each
//! day's last one as history (`quality_days`: rows read and set aside),
//! for the 考核 of past periods.

use super::db::Sql;
use crate::args;
use gdx_common::NodeId;
use gdx_common::wire::QualityReport;

use super::nodes_db::{Store, StoreError};

/// The table, created with the hub database.
pub(super) const QUALITY_SQL: &str = "
CREATE TABLE IF NOT EXISTS quality (
    node        TEXT NOT NULL,
    resource    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    scanned     INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    samples     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (node, resource)
);
CREATE TABLE IF NOT EXISTS quality_days (
    node        TEXT NOT NULL,
    resource    TEXT NOT NULL,
    day         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    scanned     INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    PRIMARY KEY (node, resource, day)
) WITHOUT ROWID;
";

/// The last quality report of one resource.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Quality {
    pub resource: String,
    /// When the scan ran (Unix seconds, the agent's clock).
    pub at: i64,
    pub scanned: u64,
    pub quarantined: u64,
    /// (place, reason) of the first rows set aside.
    pub samples: Vec<(String, String)>,
}

impl Store {
    /// Keeps `report` from `node`, unless a newer one of the resource is held.
    pub fn record_quality(&self, node: &NodeId, report: &QualityReport, now: i64) -> Result<(), StoreError> {
        let samples = serde_json::to_string(&report.samples).unwrap_or_else(|_| "[]".into());
        self.db.execute(
            "INSERT INTO quality (node, resource, at, scanned, quarantined, samples, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(node, resource) DO UPDATE SET at = excluded.at, scanned = excluded.scanned,
                 quarantined = excluded.quarantined, samples = excluded.samples, received_at = excluded.received_at
             WHERE excluded.at >= quality.at",
            args![
                node.to_string(),
                report.resource.as_str(),
                report.at,
                report.scanned as i64,
                report.quarantined as i64,
                samples,
                now
            ],
        )?;
        self.db.execute(
            "INSERT INTO quality_days (node, resource, day, at, scanned, quarantined) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(node, resource, day) DO UPDATE SET at = excluded.at, scanned = excluded.scanned,
                 quarantined = excluded.quarantined
             WHERE excluded.at >= quality_days.at",
            args![
                node.to_string(),
                report.resource.as_str(),
                report.at.div_euclid(86_400),
                report.at,
                report.scanned as i64,
                report.quarantined as i64
            ],
        )?;
        Ok(())
    }

    /// Of each of `node`'s resources, the last report made in `from..to`
    /// (Unix seconds, the agents' clocks): (resource, at, scanned, quarantined).
    pub fn quality_during(&self, node: &str, from: i64, to: i64) -> Result<Vec<(String, i64, u64, u64)>, StoreError> {
        Ok(self.db.query(
            "SELECT resource, at, scanned, quarantined FROM quality_days q
             WHERE node = ?1 AND at >= ?2 AND at < ?3
               AND at = (SELECT max(at) FROM quality_days WHERE node = q.node AND resource = q.resource AND at >= ?2 AND at < ?3)
             ORDER BY resource",
            args![node, from, to],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<i64>(2)? as u64, r.get::<i64>(3)? as u64)),
        )?)
    }

    /// The last report of each of `node`'s resources.
    pub fn quality_of(&self, node: &str) -> Result<Vec<Quality>, StoreError> {
        Ok(self.db.query(
            "SELECT resource, at, scanned, quarantined, samples FROM quality WHERE node = ?1 ORDER BY resource",
            args![node],
            |r| {
                let samples: String = r.get(4)?;
                Ok(Quality {
                    resource: r.get(0)?,
                    at: r.get(1)?,
                    scanned: r.get::<i64>(2)? as u64,
                    quarantined: r.get::<i64>(3)? as u64,
                    samples: serde_json::from_str(&samples).unwrap_or_default(),
                })
            },
        )?)
    }
}
