//! What child hubs observed of their departments, per day (`remote_days`
//! in `hub.db`), for the 考核 of departments attached below this hub: a
//! child's report replaces each (node, day) it names, and only days of
//! nodes in the child's own subtree are taken
//! (`gdx_common::evaluation::DayFacts::check`).

use super::db::{DbError, Sql};
use crate::args;
use gdx_common::NodeId;
use gdx_common::evaluation::DayFacts;

use super::nodes_db::{Store, StoreError};

/// The table, created with the hub database.
pub(super) const OBSERVATIONS_SQL: &str = "
CREATE TABLE IF NOT EXISTS remote_days (
    node        TEXT NOT NULL,
    day         INTEGER NOT NULL,
    via         TEXT NOT NULL,
    facts       TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (node, day)
) WITHOUT ROWID;
";

impl Store {
    /// Keeps the days `via` reported that pass the check, in one
    /// transaction; returns how many were taken and why the others were not.
    pub fn record_observations(
        &self,
        via: &NodeId,
        days: &[DayFacts],
        now: i64,
    ) -> Result<(u64, Vec<String>), StoreError> {
        self.db.write(|tx| {
            let (mut taken, mut refused) = (0, Vec::new());
            for d in days {
                if let Err(why) = d.check(via, now.div_euclid(86_400)) {
                    refused.push(why);
                    continue;
                }
                // only of a department the child itself reported as attached below it
                let reported: Option<String> =
                    tx.query_opt("SELECT via FROM remote_nodes WHERE node = ?1", args![d.node.to_string()], |r| {
                        r.get(0)
                    })?;
                if reported.as_deref() != Some(via.to_string().as_str()) {
                    refused.push(format!(
                        "{via} reported observations of {}, which it has not reported as its own",
                        d.node
                    ));
                    continue;
                }
                let facts = serde_json::to_string(d).map_err(|e| DbError::Encode(e.to_string()))?;
                tx.execute(
                    "INSERT INTO remote_days (node, day, via, facts, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(node, day) DO UPDATE SET via = excluded.via, facts = excluded.facts,
                    received_at = excluded.received_at",
                    args![d.node.to_string(), d.day, via.to_string(), facts, now],
                )?;
                taken += 1;
            }
            Ok((taken, refused))
        })
    }

    /// Every day child hubs reported from `from_day` on: (the hub, the facts).
    pub fn observations_from(&self, from_day: i64) -> Result<Vec<(String, DayFacts)>, StoreError> {
        let rows = self.db.query(
            "SELECT via, facts FROM remote_days WHERE day >= ?1 ORDER BY node, day",
            args![from_day],
            |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
        )?;
        let mut out = Vec::new();
        for (via, facts) in rows {
            // a row this hub wrote itself; one that does not read back is skipped, not fatal to a report
            if let Ok(f) = serde_json::from_str(&facts) {
                out.push((via, f));
            }
        }
        Ok(out)
    }
}
