//! The portal's logins and sessions, in `hub.db`: one-time login URLs
//! (spent once, within ten minutes), and sessions known by the SHA-256 of
//! their cookie (the cookie itself is never stored). A login is an audit
//! entry, recorded in the same transaction as the session it starts.

use super::db::Sql;
use crate::args;
use gdx_common::NodeId;

use super::nodes_db::{Store, StoreError};

/// The tables, created with the hub database.
pub(super) const SESSIONS_SQL: &str = "
CREATE TABLE IF NOT EXISTS portal_logins (
    nonce      TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    node       TEXT,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE TABLE IF NOT EXISTS portal_sessions (
    id_sha256  BLOB PRIMARY KEY,
    role       TEXT NOT NULL,
    node       TEXT,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// Who a session is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The centre's operator: the hub's whole subtree, every action.
    Operator,
    /// Read-only: the audit pages and the listings.
    Auditor,
    /// One department (its node): its own requests and grants.
    Department,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Department => "department",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Role::Operator),
            "auditor" => Some(Role::Auditor),
            "department" => Some(Role::Department),
            _ => None,
        }
    }
}

/// A live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    /// The department's node, for [`Role::Department`].
    pub node: Option<NodeId>,
    /// The token every form of this session carries.
    pub csrf: String,
    pub expires_at: i64,
}

/// Why a login URL was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefused {
    #[error("this login link is not one this hub issued; print one with `gdx-hub login` on this hub")]
    Unknown,
    #[error(
        "this login link was used already; each works once: print a new one with `gdx-agent login` or `gdx-hub login`"
    )]
    Used,
    #[error("this login link has expired (they last 10 minutes); print a new one with `gdx-hub login`")]
    Expired,
    /// The link cannot be read, or its claim is not for this hub now.
    #[error("{0}")]
    Malformed(String),
    #[error(
        "{node} is not a department enrolled at this hub ({hub}); print the link on the agent of a department of this hub"
    )]
    NotHere { node: gdx_common::NodeId, hub: gdx_common::NodeId },
    #[error(
        "the login link's signature does not match {node}'s certificate; print a new link with `gdx-agent login` on that department's agent"
    )]
    BadSignature { node: gdx_common::NodeId },
    #[error("{node}'s certificate is revoked or expired; ask the hub operator to enrol it again")]
    NotLive { node: gdx_common::NodeId },
}

fn sha256(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref().to_vec()
}

impl Store {
    /// Records a one-time login for an operator or auditor (its nonce is the URL's secret).
    pub fn add_login(&self, nonce: &str, role: Role, expires_at: i64) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO portal_logins (nonce, role, expires_at) VALUES (?1, ?2, ?3)",
            args![nonce, role.as_str(), expires_at],
        )?;
        Ok(())
    }

    /// Spends a login and starts its session in one transaction, with its
    /// audit entry. `signed`: a department's login, whose signature was
    /// verified (its nonce is recorded here, so it is spent once); None: an
    /// operator's or auditor's, which must have been recorded by [`Store::add_login`].
    #[allow(clippy::too_many_arguments)]
    pub fn start_session(
        &self,
        nonce: &str,
        signed: Option<(&NodeId, i64)>,
        session_id: &str,
        csrf: &str,
        lifetime: i64,
        from: &str,
        now: i64,
    ) -> Result<Result<Session, LoginRefused>, StoreError> {
        self.db.write(|tx| {
        let (role, node) = match signed {
            Some((node, expires_at)) => {
                let fresh = tx.execute(
                    "INSERT INTO portal_logins (nonce, role, node, expires_at, used_at) VALUES (?1, 'department', ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                    args![nonce, node.to_string(), expires_at, now],
                )?;
                if fresh == 0 {
                    return Ok(Err(LoginRefused::Used));
                }
                (Role::Department, Some(node.clone()))
            }
            None => {
                let row: Option<(String, i64, Option<i64>)> = tx
                    .query_opt("SELECT role, expires_at, used_at FROM portal_logins WHERE nonce = ?1", args![nonce], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
                let Some((role, expires_at, used_at)) = row else { return Ok(Err(LoginRefused::Unknown)) };
                if used_at.is_some() {
                    return Ok(Err(LoginRefused::Used));
                }
                if expires_at <= now {
                    return Ok(Err(LoginRefused::Expired));
                }
                tx.execute("UPDATE portal_logins SET used_at = ?2 WHERE nonce = ?1", args![nonce, now])?;
                (Role::parse(&role).unwrap_or(Role::Auditor), None)
            }
        };
        let expires_at = now + lifetime;
        tx.execute(
            "INSERT INTO portal_sessions (id_sha256, role, node, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![sha256(session_id), role.as_str(), node.as_ref().map(|n| n.to_string()), csrf, now, expires_at],
        )?;
        // logins spent long ago are of no more use
        tx.execute("DELETE FROM portal_logins WHERE expires_at < ?1", args![now - 86_400])?;
        tx.execute("DELETE FROM portal_sessions WHERE expires_at < ?1", args![now])?;
        super::outbox::note(
            tx,
            &gdx_common::audit::Event {
                kind: "login".into(),
                at: now,
                node: node.as_ref().map(|n| n.to_string()),
                detail: serde_json::json!({ "role": role.as_str(), "from": from }),
                ..Default::default()
            },
        )?;
            Ok(Ok(Session { role, node, csrf: csrf.to_owned(), expires_at }))
        })
    }

    /// The live session of a cookie; None when unknown, expired, or its
    /// department's certificates are all revoked (the session then ends).
    pub fn session(&self, session_id: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let id = sha256(session_id);
        let row: Option<(String, Option<String>, String, i64)> = self.db.query_opt(
            "SELECT role, node, csrf, expires_at FROM portal_sessions WHERE id_sha256 = ?1 AND expires_at > ?2",
            args![id, now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let Some((role, node, csrf, expires_at)) = row else { return Ok(None) };
        let (Some(role), node) = (Role::parse(&role), node.as_deref().map(NodeId::parse).transpose().ok().flatten())
        else {
            return Ok(None);
        };
        if let Some(n) = &node {
            let live: i64 = self.db.query_row(
                "SELECT count(*) FROM certs WHERE node = ?1 AND revoked_at IS NULL AND not_after > ?2",
                args![n.to_string(), now],
                |r| r.get(0),
            )?;
            if live == 0 {
                self.end_session(session_id)?;
                return Ok(None);
            }
        }
        Ok(Some(Session { role, node, csrf, expires_at }))
    }

    /// Ends a session (logout).
    pub fn end_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.db.execute("DELETE FROM portal_sessions WHERE id_sha256 = ?1", args![sha256(session_id)])?;
        Ok(())
    }

    /// Records an event in `hub.db`'s audit outbox.
    pub fn note(&self, event: &gdx_common::audit::Event) -> Result<(), StoreError> {
        super::outbox::note(&self.db, event)?;
        Ok(())
    }

    /// The certificate issued to `node` at this hub most recently (DER),
    /// against which its signed login is checked.
    pub fn issued_cert(&self, node: &NodeId) -> Result<Option<Vec<u8>>, StoreError> {
        // a renewed certificate first: the node signs with its newest key
        if let Some(cert) = self.renewed_cert(node)? {
            return Ok(Some(cert));
        }
        Ok(self.db.query_opt(
            "SELECT issued_cert FROM tokens WHERE node = ?1 AND issued_cert IS NOT NULL ORDER BY used_at DESC LIMIT 1",
            args![node.to_string()],
            |r| r.get(0),
        )?)
    }

    /// True when `serial` was issued here and is not revoked.
    pub fn serial_live(&self, serial: &str, now: i64) -> Result<bool, StoreError> {
        let n: i64 = self.db.query_row(
            "SELECT count(*) FROM certs WHERE serial = ?1 AND revoked_at IS NULL AND not_after > ?2",
            args![serial, now],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }
}
