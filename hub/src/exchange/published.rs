//! Where the exchange reads a provider's applied changesets, to deliver
//! them and to issue notices from them: its vault file (or, for a hub's
//! own node, the file of a base database), or its schema when the vaults
//! are on PostgreSQL (`crate::store::pg`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gdx_common::NodeId;
use gdx_common::data::Changeset;
use gdx_common::wire::{self, Message};
use rusqlite::{Connection, OptionalExtension, params};

use super::{ExchangeError, decode_changeset};
use crate::args;
use crate::store::HubPaths;
use crate::store::db::{Db, Sql, Which};
use crate::store::pg::PgVaults;

/// The changesets `node` published, read-only.
pub(super) enum Published {
    File(Connection),
    Postgres {
        pg: Arc<PgVaults>,
        node: NodeId,
    },
    /// A base database this hub shares, in its schema on PostgreSQL.
    Base(Db),
}

impl Published {
    /// The store of what `node` publishes as `resource`; None while it has none.
    pub(super) fn open(
        pg: Option<&Arc<PgVaults>>,
        vault_dir: &Path,
        node: &NodeId,
        resource: &str,
    ) -> Result<Option<Self>, ExchangeError> {
        if let Some(pg) = pg {
            if !node.is_hub_id() {
                return Ok(Some(Published::Postgres { pg: pg.clone(), node: node.clone() }));
            }
            // the hub's own resources are its shared bases, named in bases.toml (no other name is looked for)
            let Some(hub_dir) = vault_dir.parent() else { return Ok(None) };
            let bases = crate::base::BasesConfig::load(hub_dir).map_err(ExchangeError::Store)?;
            if !bases.bases.iter().any(|b| b.name == resource) {
                return Ok(None);
            }
            let which = Which::base(resource);
            return Ok(Db::postgres_of(&HubPaths::new(hub_dir), which, &which.tables())?.map(Published::Base));
        }
        let path = crate::store::vault::published_path(vault_dir, node, resource);
        if !path.exists() {
            return Ok(None);
        }
        let vault = gdx_files::open_read_only(&path)?;
        vault.busy_timeout(Duration::from_secs(5))?;
        Ok(Some(Published::File(vault)))
    }

    /// The epoch and last applied number of `resource`, if it has any.
    pub(super) fn head(&self, resource: &str) -> Result<Option<(i64, i64)>, ExchangeError> {
        match self {
            Published::File(vault) => Ok(vault
                .query_row("SELECT epoch, last_seq FROM _gdx_resources WHERE resource = ?1", [resource], |x| {
                    Ok((x.get::<_, i64>(0)?, x.get::<_, i64>(1)?))
                })
                .optional()?),
            Published::Postgres { pg, node } => {
                pg.head(node, resource).map(|h| h.map(|(epoch, last, _)| (epoch, last))).map_err(store_error)
            }
            Published::Base(db) => Ok(db.query_opt(
                "SELECT epoch, last_seq FROM _gdx_resources WHERE resource = ?1",
                args![resource],
                |x| Ok((x.get(0)?, x.get(1)?)),
            )?),
        }
    }

    /// Changeset `seq` of `resource` as its origin signed it, decoded; None
    /// when the vault holds no such number (it is being replaced).
    pub(super) fn changeset(&self, resource: &str, seq: i64) -> Result<Option<Changeset>, ExchangeError> {
        let frame: Option<Option<Vec<u8>>> = match self {
            Published::File(vault) => vault
                .query_row(
                    "SELECT frame FROM _gdx_changesets WHERE resource = ?1 AND seq = ?2",
                    params![resource, seq],
                    |x| x.get(0),
                )
                .optional()?,
            Published::Postgres { pg, node } => pg.frame(node, resource, seq).map_err(store_error)?,
            Published::Base(db) => db.query_opt(
                "SELECT frame FROM _gdx_changesets WHERE resource = ?1 AND seq = ?2",
                args![resource, seq],
                |x| x.get(0),
            )?,
        };
        let Some(frame) = frame else { return Ok(None) };
        let Some(frame) = frame else {
            return Err(ExchangeError::Damaged(format!(
                "changeset {seq} of {resource} is not kept in the vault (it was applied by an older version of gdx-hub); the provider must send the resource again in full"
            )));
        };
        match wire::decode_frame(&frame) {
            Ok(Some((Message::Upload(env), _))) => {
                decode_changeset(&env.body).map(Some).map_err(|e| ExchangeError::Damaged(e.to_string()))
            }
            _ => Err(ExchangeError::Damaged(format!("changeset {seq} of {resource} does not decode"))),
        }
    }
}

fn store_error(e: crate::store::vault::VaultError) -> ExchangeError {
    ExchangeError::Store(e.to_string())
}
