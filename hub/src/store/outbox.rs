//! The audit outbox every recording store has: an action's event is written
//! there in the action's own transaction, and the hub's `audit` module
//! collects it into the log, so an action and its entry are recorded
//! together or not at all.

use gdx_common::audit::Event;

use super::db::{DbError, Sql};

/// The outbox table every recording store creates.
pub const OUTBOX_SQL: &str =
    "CREATE TABLE IF NOT EXISTS audit_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);";

/// Records `event` in the outbox of the store whose transaction `db` is in.
pub fn note(db: &impl Sql, event: &Event) -> Result<(), DbError> {
    let json = serde_json::to_string(event).map_err(|e| DbError::Encode(e.to_string()))?;
    db.execute("INSERT INTO audit_outbox (event) VALUES (?1)", crate::args![json])?;
    Ok(())
}
