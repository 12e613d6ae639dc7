//! Certificate renewals in `hub.db` (`gdx_common::renewal`): each
//! certificate renewed once, the new certificate kept for the portal's
//! login, and revocations carried down from a certificate to those renewed
//! from it.

use super::db::{Sql, Tx};
use crate::args;
use gdx_common::NodeId;

use super::nodes_db::{Store, StoreError};

/// Each certificate renewed here, once: the one it replaces, the new one
/// (DER, for the portal's login) and the key it certifies (an answer lost
/// on the way is given again for the same key, never a second certificate);
/// a child hub's intermediate CA too. And what each node last said of the
/// roots it trusts (a root rollover, `crate::rollover`).
pub(super) const RENEWALS_SQL: &str = "
CREATE TABLE IF NOT EXISTS renewals (
    old_serial TEXT PRIMARY KEY,
    new_serial TEXT NOT NULL,
    node       TEXT NOT NULL,
    public_key BLOB NOT NULL,
    cert       BLOB NOT NULL,
    at         INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roots_told (
    node    TEXT PRIMARY KEY,
    missing INTEGER NOT NULL,
    at      INTEGER NOT NULL
);
";

/// Revokes, in `tx`, every certificate renewed from a revoked one, down the line.
pub(super) fn revoke_renewed(tx: &Tx<'_>, now: i64) -> Result<(), StoreError> {
    loop {
        let n = tx.execute(
            "UPDATE certs SET revoked_at = ?1 WHERE revoked_at IS NULL AND serial IN
               (SELECT r.new_serial FROM renewals r JOIN certs c ON c.serial = r.old_serial WHERE c.revoked_at IS NOT NULL)",
            args![now],
        )?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// Why a renewal is refused, or the certificate already issued for it.
pub enum RenewalCheck {
    /// Renew it.
    New,
    /// Renewed before for this very key: the same certificate again.
    Again(Vec<u8>),
    /// Refused, with the reason for the node.
    Refused(String),
}

impl Store {
    /// Whether the certificate `old_serial` of `node` may be renewed for `public_key`.
    pub fn renewal_check(
        &self,
        node: &NodeId,
        old_serial: &str,
        public_key: &[u8],
    ) -> Result<RenewalCheck, StoreError> {
        let revoked: Option<Option<i64>> = self.db.query_opt(
            "SELECT revoked_at FROM certs WHERE serial = ?1 AND node = ?2",
            args![old_serial, node.to_string()],
            |r| r.get(0),
        )?;
        if revoked.flatten().is_some() {
            return Ok(RenewalCheck::Refused("this certificate has been revoked; it cannot be renewed".into()));
        }
        let done: Option<(Vec<u8>, Vec<u8>)> = self.db.query_opt(
            "SELECT public_key, cert FROM renewals WHERE old_serial = ?1",
            args![old_serial],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(match done {
            Some((key, cert)) if key == public_key => RenewalCheck::Again(cert),
            Some(_) => RenewalCheck::Refused(
                "this certificate was renewed already; connect with the renewed one, or enrol again with a new token"
                    .into(),
            ),
            None => RenewalCheck::New,
        })
    }

    /// The newest certificate renewed for `node` here (DER), if any.
    pub fn renewed_cert(&self, node: &NodeId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .query_opt(
                "SELECT r.cert FROM renewals r JOIN certs c ON c.serial = r.new_serial
                 WHERE r.node = ?1 AND c.revoked_at IS NULL AND c.role != 'ca' ORDER BY r.at DESC, r.new_serial DESC LIMIT 1",
                args![node.to_string()],
                |r| r.get(0),
            )?)
    }

    /// True when `serial` is a certificate of `node` recorded here and not revoked.
    pub fn cert_of_node(&self, node: &NodeId, serial: &str) -> Result<bool, StoreError> {
        let n: i64 = self.db.query_row(
            "SELECT count(*) FROM certs WHERE serial = ?1 AND node = ?2 AND revoked_at IS NULL",
            args![serial, node.to_string()],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The serial of the newest unrevoked intermediate CA recorded for child hub `node`.
    pub fn newest_ca(&self, node: &NodeId) -> Result<Option<String>, StoreError> {
        Ok(self.db.query_opt(
            "SELECT serial FROM certs WHERE node = ?1 AND role = 'ca' AND revoked_at IS NULL
                 ORDER BY issued_at DESC, not_after DESC, serial DESC LIMIT 1",
            args![node.to_string()],
            |r| r.get(0),
        )?)
    }

    /// Records what `node` said of the roots it trusts: how many of this
    /// hub's it lacks (`gdx-hub ca status`).
    pub fn record_roots(&self, node: &NodeId, missing: usize, now: i64) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO roots_told (node, missing, at) VALUES (?1, ?2, ?3)
             ON CONFLICT(node) DO UPDATE SET missing = excluded.missing, at = excluded.at",
            args![node.to_string(), missing as i64, now],
        )?;
        Ok(())
    }

    /// What each node last said of the roots it trusts: (node, missing, at).
    pub fn roots_told(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(self.db.query("SELECT node, missing, at FROM roots_told ORDER BY node", args![], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?)
    }

    /// Records a certificate renewed for `node` (the one it replaces,
    /// `old_serial`, stays valid until it ends) in one transaction: the new
    /// certificate among the node's (with `role` `ca`, a child hub's
    /// intermediate CA, among the hub's, so that revoking the hub revokes it
    /// too), the renewal, and its audit entry.
    #[allow(clippy::too_many_arguments)]
    pub fn record_renewal(
        &self,
        node: &NodeId,
        role: &str,
        serial: &str,
        not_after: i64,
        old_serial: &str,
        public_key: &[u8],
        cert: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        self.db.write(|tx| {
            if role == "ca" {
                super::nodes_db::record_ca(tx, &node.to_string(), cert, now)?;
            } else {
                tx.execute(
                    "INSERT INTO certs (serial, node, role, issued_at, not_after) VALUES (?1, ?2, ?3, ?4, ?5)",
                    args![serial, node.to_string(), role, now, not_after],
                )?;
            }
            tx.execute(
            "INSERT INTO renewals (old_serial, new_serial, node, public_key, cert, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![old_serial, serial, node.to_string(), public_key, cert, now],
        )?;
            crate::store::outbox::note(
                tx,
                &gdx_common::audit::Event {
                    kind: "renewed".into(),
                    at: now,
                    node: Some(node.to_string()),
                    detail: serde_json::json!({
                        "role": role, "serial": serial, "not_after": not_after, "replaces": old_serial,
                    }),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
    }
}
