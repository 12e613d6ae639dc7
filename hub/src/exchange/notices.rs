//! 双告知 notices in `exchange.db`: issued from the registration resource's
//! changesets, claimed or passed on by the department they name, and
//! carried between hubs with the other exchange items (by change number).
//!
//! Exactly once: the hub of the registration's provider reads its vault's
//! changesets in order and, per changeset, in one transaction stores the
//! notices it brings, the business scope each enterprise now has (to tell
//! a new scope from an old one) and the changeset reached. Killed before
//! the commit, the changeset is read again; after, never. A notice's id is
//! this hub's next number, so a repeated changeset cannot issue twice.

use gdx_common::creditcode::CreditCode;
use gdx_common::data::{Change, Value};
use gdx_common::notice::{self, Notice, Rules};
use gdx_common::wire::NoticeAct;

use super::*;
use crate::supervision::config::Registration;

/// Changesets of the registration read per pass.
const NOTICE_CHANGESETS_PER_PASS: u64 = 32;

pub(super) const NOTICES_SQL: &str = "
    CREATE TABLE IF NOT EXISTS notices (
        id      TEXT PRIMARY KEY,
        to_node TEXT NOT NULL,
        version INTEGER NOT NULL,
        notice  TEXT NOT NULL,
        issued  INTEGER NOT NULL,
        rev     INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS notices_rev ON notices (rev);
    CREATE INDEX IF NOT EXISTS notices_to ON notices (to_node);
    -- at the registration's hub: each enterprise's business scope as last read
    CREATE TABLE IF NOT EXISTS notice_scopes (credit_code TEXT PRIMARY KEY, scope TEXT NOT NULL) WITHOUT ROWID;";

impl Exchange {
    /// One notice by id.
    pub fn notice(&self, id: &str) -> Result<Option<Notice>, ExchangeError> {
        let json: Option<String> =
            self.conn.query_row("SELECT notice FROM notices WHERE id = ?1", args![id], |r| r.get(0)).optional()?;
        json.map(|j| parse_notice(&j)).transpose()
    }

    /// The notices kept here, newest first: all, or those sent to `to`.
    pub fn notices(&self, to: Option<&NodeId>) -> Result<Vec<Notice>, ExchangeError> {
        let mut stmt = self.conn.prepare(
            "SELECT notice FROM notices WHERE CAST(?1 AS TEXT) IS NULL OR to_node = ?1 ORDER BY issued DESC, id DESC",
        )?;
        let rows: Vec<String> =
            stmt.query_map(args![to.map(NodeId::to_string)], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows.iter().map(|j| parse_notice(j)).collect()
    }

    /// Stores `n` if newer than what is held; true when stored.
    pub(super) fn store_notice(tx: &Tx<'_>, n: &Notice) -> Result<bool, ExchangeError> {
        let held: Option<i64> =
            tx.query_row("SELECT version FROM notices WHERE id = ?1", args![&n.id], |x| x.get(0)).optional()?;
        if held.is_some_and(|v| v as u64 >= n.version()) {
            return Ok(false);
        }
        let rev = Self::next(tx, "rev")?;
        let json = serde_json::to_string(n).map_err(|e| ExchangeError::Damaged(e.to_string()))?;
        tx.execute(
            "INSERT INTO notices (id, to_node, version, notice, rev, issued) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, notice = excluded.notice, rev = excluded.rev",
            args![n.id, n.to.to_string(), n.version() as i64, json, rev as i64, n.issued_at],
        )?;
        Ok(true)
    }

    /// Reads the registration resource's new changesets (when its provider
    /// is attached here) and issues the notices they bring; returns how many.
    pub fn issue_notices(&mut self, reg: &Registration, rules: &Rules, now: i64) -> Result<usize, ExchangeError> {
        if self.router.place(&reg.provider) != Place::Here {
            return Ok(0);
        }
        let Some(vault) =
            super::published::Published::open(self.postgres.as_ref(), &self.vault_dir, &reg.provider, &reg.resource)?
        else {
            return Ok(0);
        };
        let Some((epoch, last)) = vault.head(&reg.resource)? else {
            return Ok(0);
        };
        // the cursor belongs to this registration: another named in supervision.toml starts from its beginning
        let (seq_name, epoch_name) = (
            format!("notices_seq:{}/{}", reg.provider, reg.resource),
            format!("notices_epoch:{}/{}", reg.provider, reg.resource),
        );
        let mut seq = self.meta(&seq_name)? as i64;
        if self.meta(&epoch_name)? as i64 != epoch {
            seq = 0; // sent again in full: every row is read again, and only new scopes bring notices
        }
        let mut issued = 0;
        let mut read = 0;
        while seq < last && read < NOTICE_CHANGESETS_PER_PASS {
            let Some(cs) = vault.changeset(&reg.resource, seq + 1)? else {
                return Ok(issued); // the vault is being replaced; next pass
            };
            if cs.epoch as i64 != epoch {
                return Ok(issued);
            }
            let col = |name: &str| {
                cs.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
                    ExchangeError::Damaged(format!(
                        "supervision.toml: the registration {} of {} has no column {name}; name its columns in [registration]",
                        reg.resource, reg.provider
                    ))
                })
            };
            let (code_at, name_at, scope_at) = (col(&reg.credit_code)?, col(&reg.name)?, col(&reg.scope)?);
            let source = format!("{} {} changeset {}", reg.provider, reg.resource, seq + 1);
            let tx = self.conn.begin()?;
            for change in &cs.changes {
                let row = match change {
                    Change::Upsert(row) => row,
                    Change::Delete(_) => {
                        let key = cs.key_of(change);
                        if let Some(Value::Text(code)) = key.first() {
                            tx.execute("DELETE FROM notice_scopes WHERE credit_code = ?1", args![code])?;
                        }
                        continue;
                    }
                };
                let text = |i: usize| match row.get(i) {
                    Some(Value::Text(t)) => t.clone(),
                    _ => Default::default(),
                };
                let Ok(code) = CreditCode::parse(&text(code_at)) else {
                    continue; // the agent quarantines bad codes; a key of another kind is not an enterprise
                };
                let scope = text(scope_at);
                let old: Option<String> = tx
                    .query_row("SELECT scope FROM notice_scopes WHERE credit_code = ?1", args![code.as_str()], |r| {
                        r.get(0)
                    })
                    .optional()?;
                for matter in rules.to_notify(old.as_deref(), &scope) {
                    let to = match notice::route(matter, &code) {
                        Ok(to) => to,
                        Err(e) => {
                            // not lost in silence: the log says which matter of which enterprise went nowhere
                            tracing::warn!(code = code.as_str(), error = %e, "cannot route a notice");
                            crate::store::outbox::note(
                                &tx,
                                &gdx_common::audit::Event {
                                    kind: "notice".into(),
                                    at: crate::util::now(),
                                    node: None,
                                    resource: None,
                                    request: None,
                                    detail: serde_json::json!({
                                        "action": "unroutable", "error": e, "credit_code": code.as_str(),
                                        "enterprise": text(name_at), "matter": matter.name, "source": source,
                                    }),
                                },
                            )?;
                            continue;
                        }
                    };
                    let id = format!("{}-{}", self.router.division, Self::next(&tx, "notice_id")?);
                    let mut n = Notice::issued(id, &code, &text(name_at), matter, to, now);
                    n.scope = scope.to_string();
                    n.source = source.clone();
                    Self::store_notice(&tx, &n)?;
                    audit_notice(&tx, "issued", &n, serde_json::json!({ "old_scope": old }))?;
                    issued += 1;
                }
                tx.execute(
                    "INSERT INTO notice_scopes (credit_code, scope) VALUES (?1, ?2)
                     ON CONFLICT(credit_code) DO UPDATE SET scope = excluded.scope",
                    args![code.as_str(), scope],
                )?;
            }
            seq += 1;
            read += 1;
            Self::set_meta(&tx, &epoch_name, epoch as u64)?;
            Self::set_meta(&tx, &seq_name, seq as u64)?;
            tx.commit()?;
        }
        Ok(issued)
    }

    /// `node`, attached here, claims a notice sent to it or passes it on.
    /// Passed on to a department, the notice continues as a new one issued
    /// here, in the same transaction.
    pub fn act_on_notice(
        &mut self,
        node: &NodeId,
        act: &NoticeAct,
        now: i64,
    ) -> Result<Result<Notice, Refusal>, ExchangeError> {
        let Some(mut n) = self.notice(&act.id)? else {
            return Ok(Err(Refusal::NoNotice { id: act.id.clone() }));
        };
        let acted = match &act.pass {
            None => n.claim(node, now),
            Some(p) => n.pass(node, p.to.clone(), &p.reason, now),
        };
        if let Err(e) = acted {
            return Ok(Err(e.into()));
        }
        let tx = self.conn.begin()?;
        Self::store_notice(&tx, &n)?;
        let late = n.state_at(now) == "claimed late";
        match &act.pass {
            None => audit_notice(&tx, "claimed", &n, serde_json::json!({ "late": late }))?,
            Some(p) => {
                let id = format!("{}-{}", self.router.division, Self::next(&tx, "notice_id")?);
                let next = n.passed_on(id, p.to.clone(), now);
                Self::store_notice(&tx, &next)?;
                audit_notice(
                    &tx,
                    "passed",
                    &n,
                    serde_json::json!({
                        "reason": p.reason.trim(), "to": p.to.to_string(), "continued_as": next.id,
                    }),
                )?;
            }
        }
        tx.commit()?;
        Ok(Ok(n))
    }

    /// Stores a notice another hub sent (`from`), when the rules take it.
    pub(super) fn merge_notice(
        tx: &Tx<'_>,
        router: &Router,
        side: grant::Side,
        sent: &Notice,
    ) -> Result<(), ExchangeError> {
        let get = |id: &str| -> Result<Option<Notice>, ExchangeError> {
            tx.query_row("SELECT notice FROM notices WHERE id = ?1", args![id], |x| x.get::<String>(0))
                .optional()?
                .map(|j| parse_notice(&j))
                .transpose()
        };
        let held = get(&sent.id)?;
        let continued = sent.passed_from.as_deref().map(get).transpose()?.flatten();
        match notice::take(router.division, side, held.as_ref(), continued.as_ref(), sent, clock()) {
            Ok(true) => {
                Self::store_notice(tx, sent)?;
            }
            Ok(false) => {}
            Err(why) => {
                tracing::warn!(id = %sent.id, from = ?side, reason = %why, "refused a notice");
                let from = match side {
                    grant::Side::Parent => "the parent hub".to_owned(),
                    grant::Side::Child(d) => format!("{d}/hub"),
                };
                crate::store::outbox::note(
                    tx,
                    &gdx_common::audit::Event {
                        kind: "refused".into(),
                        at: crate::util::now(),
                        node: Some(sent.to.to_string()),
                        resource: None,
                        request: Some(sent.id.clone()),
                        detail: serde_json::json!({ "from": from, "reason": why, "notice": sent.matter, "credit_code": sent.credit_code }),
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Records a notice's event (`action`: issued, claimed, passed) in the audit outbox, in the caller's transaction.
fn audit_notice(
    conn: &impl Sql,
    action: &str,
    n: &Notice,
    mut detail: serde_json::Value,
) -> Result<(), crate::store::db::DbError> {
    if let Some(d) = detail.as_object_mut() {
        d.insert("action".into(), action.into());
        d.insert("credit_code".into(), n.credit_code.clone().into());
        d.insert("enterprise".into(), n.enterprise.clone().into());
        d.insert("matter".into(), n.matter.clone().into());
        d.insert("source".into(), n.source.clone().into());
        d.insert("passed_from".into(), n.passed_from.clone().into());
    }
    crate::store::outbox::note(
        conn,
        &gdx_common::audit::Event {
            kind: "notice".into(),
            at: crate::util::now(),
            node: Some(n.to.to_string()),
            resource: None,
            request: Some(n.id.clone()),
            detail,
        },
    )
}

fn parse_notice(json: &str) -> Result<Notice, ExchangeError> {
    serde_json::from_str(json).map_err(|e| ExchangeError::Damaged(format!("a stored notice does not decode: {e}")))
}
