//! 联合惩戒 checks in `exchange.db`: each check a department made at this
//! hub, with what it found and the department's feedback, and the rows of
//! a grant's copy kept here that name a subject. Checks travel up to the
//! province with the other exchange items, so that the centre counts them
//! for every department; they never travel down.

use gdx_common::discipline::{Action, Check};

use super::*;

pub(super) const CHECKS_SQL: &str = "
    CREATE TABLE IF NOT EXISTS checks (
        id      TEXT PRIMARY KEY,
        node    TEXT NOT NULL,
        at      INTEGER NOT NULL,
        version INTEGER NOT NULL,
        record  TEXT NOT NULL,
        rev     INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS checks_rev ON checks (rev);
    CREATE INDEX IF NOT EXISTS checks_node ON checks (node);";

/// A check as it travels up: an ID number masked (the centre counts
/// checks; it need not learn whom a county checked).
pub(super) fn travelling(mut c: Check) -> Check {
    if let gdx_common::discipline::Subject::Person(id) = &c.subject {
        c.subject = gdx_common::discipline::Subject::Person(gdx_common::grant::mask(id));
    }
    c
}

/// 1 before feedback, 2 after: hubs keep the higher.
fn version(c: &Check) -> u64 {
    if c.feedback.is_some() { 2 } else { 1 }
}

impl Exchange {
    /// The live grants of `consumer` for catalogue entry `code`.
    pub fn live_grants(&self, consumer: &NodeId, code: &str, now: i64) -> Result<Vec<RequestRecord>, ExchangeError> {
        Ok(self
            .records_where("consumer = ?1", &consumer.to_string())?
            .into_iter()
            .filter(|r| r.code == code && r.is_live(now))
            .collect())
    }

    /// The rows of grant `grant`'s copy kept here whose `column` is `value`
    /// (at most `limit`), as JSON objects of the delivered columns.
    pub fn replica_rows_where(
        &self,
        grant: &str,
        column: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ExchangeError> {
        Ok(super::replica::rows_where(&self.conn, grant, column, value, limit)?)
    }

    /// Records a check made here, numbering it `DIVISION-CN`.
    pub fn record_check(&mut self, mut check: Check) -> Result<Check, ExchangeError> {
        let tx = self.conn.begin()?;
        check.id = format!("{}-C{}", self.router.division, Self::next(&tx, "check_id")?);
        Self::store_check(&tx, &check)?;
        audit_check(&tx, "check", &check)?;
        tx.commit()?;
        Ok(check)
    }

    /// `node` reports what it did after its check `id`.
    pub fn feedback(
        &mut self,
        node: &NodeId,
        id: &str,
        action: Action,
        reason: &str,
        now: i64,
    ) -> Result<Result<Check, Refusal>, ExchangeError> {
        let Some(mut c) = self.check(id)? else {
            return Ok(Err(Refusal::NoCheck { id: id.to_owned() }));
        };
        if let Err(e) = c.report(node, action, reason, now) {
            return Ok(Err(e.into()));
        }
        let tx = self.conn.begin()?;
        Self::store_check(&tx, &c)?;
        audit_check(&tx, "feedback", &c)?;
        tx.commit()?;
        Ok(Ok(c))
    }

    /// One check by id.
    pub fn check(&self, id: &str) -> Result<Option<Check>, ExchangeError> {
        let json: Option<String> =
            self.conn.query_row("SELECT record FROM checks WHERE id = ?1", args![id], |r| r.get(0)).optional()?;
        json.map(|j| parse_check(&j)).transpose()
    }

    /// The checks kept here, newest first: all, or those `node` made.
    pub fn checks(&self, node: Option<&NodeId>) -> Result<Vec<Check>, ExchangeError> {
        let mut stmt = self.conn.prepare(
            "SELECT record FROM checks WHERE CAST(?1 AS TEXT) IS NULL OR node = ?1 ORDER BY at DESC, id DESC",
        )?;
        let rows: Vec<String> =
            stmt.query_map(args![node.map(NodeId::to_string)], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows.iter().map(|j| parse_check(j)).collect()
    }

    pub(super) fn store_check(tx: &Tx<'_>, c: &Check) -> Result<bool, ExchangeError> {
        let held: Option<i64> =
            tx.query_row("SELECT version FROM checks WHERE id = ?1", args![&c.id], |x| x.get(0)).optional()?;
        if held.is_some_and(|v| v as u64 >= version(c)) {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        let json = serde_json::to_string(c).map_err(|e| ExchangeError::Damaged(e.to_string()))?;
        tx.execute(
            "INSERT INTO checks (id, node, at, version, record, rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, record = excluded.record, rev = excluded.rev",
            args![c.id, c.node.to_string(), c.at, version(c) as i64, json, rev as i64],
        )?;
        Ok(true)
    }

    /// Stores a check a child hub (`from`) sent up, when it may speak for
    /// it: made at a hub of its subtree by a department of its subtree, and,
    /// if held, changed only by its feedback.
    pub(super) fn merge_check(tx: &Tx<'_>, from: Option<DivisionCode>, c: &Check) -> Result<(), ExchangeError> {
        let Some(child) = from else { return Ok(()) }; // checks never come down
        let made_at = c.id.split_once("-C").and_then(|(d, _)| DivisionCode::parse(d).ok());
        if !made_at.is_some_and(|d| child.contains(d)) || !child.contains(c.node.division()) {
            tracing::warn!(id = %c.id, node = %c.node, from = %child, "refused a check from outside the child's subtree");
            return Ok(());
        }
        if let Some(held) = Self::check_in(tx, &c.id)? {
            let same = Check { feedback: held.feedback.clone(), ..c.clone() };
            if same != held {
                tracing::warn!(id = %c.id, from = %child, "refused a check that came back changed in more than its feedback");
                return Ok(());
            }
        }
        Self::store_check(tx, c)?;
        Ok(())
    }

    fn check_in(tx: &Tx<'_>, id: &str) -> Result<Option<Check>, ExchangeError> {
        let json: Option<String> =
            tx.query_row("SELECT record FROM checks WHERE id = ?1", args![id], |r| r.get(0)).optional()?;
        json.map(|j| parse_check(&j)).transpose()
    }
}

/// Records a check (`action`: check or feedback) in the audit outbox. An ID
/// number is personal data: the log keeps only its SHA-256, as hex.
fn audit_check(conn: &impl Sql, action: &str, c: &Check) -> Result<(), crate::store::db::DbError> {
    let subject = match &c.subject {
        gdx_common::discipline::Subject::Entity(code) => serde_json::json!({ "credit_code": code }),
        gdx_common::discipline::Subject::Person(id) => {
            serde_json::json!({ "person_sha256": gdx_common::token::hex(&gdx_certs::pki::sha256(id.as_bytes())) })
        }
    };
    crate::store::outbox::note(
        conn,
        &gdx_common::audit::Event {
            kind: "check".into(),
            at: crate::util::now(),
            node: Some(c.node.to_string()),
            resource: None,
            request: Some(c.id.clone()),
            detail: serde_json::json!({
                "action": action,
                "subject": subject,
                "matter": c.matter,
                "restricted": c.restricted(),
                "measures": c.finding.hits.iter().map(|h| format!("{}: {}", h.listing.memorandum, h.measure)).collect::<Vec<_>>(),
                "unread": c.unread,
                "feedback": c.feedback.as_ref().map(|f| serde_json::json!({ "action": f.action.label(), "reason": f.reason })),
            }),
        },
    )
}

fn parse_check(json: &str) -> Result<Check, ExchangeError> {
    serde_json::from_str(json).map_err(|e| ExchangeError::Damaged(format!("a stored check does not decode: {e}")))
}
