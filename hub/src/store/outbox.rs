//! The audit outbox every recording store has: an action's event is written
//! there in the action's own transaction, and the hub's `audit` module
//! collects it into the log, so an action and its entry are recorded
//! together or not at all.

use gdx_common::audit::Event;
use rusqlite::Connection;

/// The outbox table every recording store creates.
pub const OUTBOX_SQL: &str =
    "CREATE TABLE IF NOT EXISTS audit_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);";

/// Records `event` in the outbox of the store whose transaction `conn` is in.
pub fn note(conn: &Connection, event: &Event) -> rusqlite::Result<()> {
    let json = serde_json::to_string(event).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.execute("INSERT INTO audit_outbox (event) VALUES (?1)", [json])?;
    Ok(())
}
