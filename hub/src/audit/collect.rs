//! Collecting the stores' audit events into the log: from the outbox of
//! every vault file and of the stores on PostgreSQL, a pass of up to
//! `PASS_STORES` stores in one transaction of the log, forgetting in each
//! outbox exactly what was read.

use super::*;

impl AuditLog {
    /// Moves the events waiting in every store's outbox into the log, in
    /// order per store; returns how many were appended.
    pub fn collect(&mut self) -> Result<usize, AuditError> {
        Ok(self.collect_from_vaults(&self.vault_files())?.0)
    }

    /// Every vault file of this hub, in name order.
    pub fn vault_files(&self) -> Vec<PathBuf> {
        let mut vaults: Vec<PathBuf> = match std::fs::read_dir(HubPaths::new(&self.dir).vaults()) {
            Ok(dir) => dir
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "db"))
                .collect(),
            Err(_) => Vec::new(),
        };
        vaults.sort();
        vaults
    }

    /// Like [`AuditLog::collect`], but of the vaults only those in `vaults`
    /// (those written since the last look; see `Vaults::take_written`).
    /// Returns how many were appended, and the vaults that still hold
    /// events (more than one batch was waiting, or the pass was full).
    ///
    /// The events of every store read are appended in one transaction, one
    /// flush of the log for the whole pass; only then does each store's
    /// outbox forget them. Killed in between, the next pass finds them
    /// again and skips them (each entry names its source).
    pub fn collect_from_vaults(&mut self, vaults: &[PathBuf]) -> Result<(usize, Vec<PathBuf>), AuditError> {
        let mut more = Vec::new();
        let p = HubPaths::new(&self.dir);
        // the base databases publish too (few files, read each time)
        let mut bases: Vec<PathBuf> = std::fs::read_dir(p.bases())
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "db"))
                    .collect()
            })
            .unwrap_or_default();
        bases.sort();
        let mut read = Vec::new();
        let mut events = 0;
        for path in [p.db(), p.catalog_db(), p.exchange_db()].iter().chain(&bases).chain(vaults).filter(|p| p.exists())
        {
            if events >= PASS_LIMIT || read.len() >= PASS_STORES {
                more.push(path.clone());
                continue;
            }
            match self.waiting_in(path) {
                Ok(Some(waiting)) => {
                    events += waiting.events.len();
                    read.push(waiting);
                }
                Ok(None) => {}
                // one store that cannot be read (busy, damaged) holds back none of the others
                Err(e) => {
                    tracing::warn!(store = %path.display(), error = %e, "the audit log cannot read this store's events now; it tries again");
                    more.push(path.clone());
                }
            }
        }
        let mut on_postgres = Vec::new();
        for (k, (which, db)) in self.outboxes.iter().enumerate() {
            let events = waiting(db)?;
            if !events.is_empty() {
                on_postgres.push((k, which.name().to_owned(), events));
            }
        }
        let names = read.iter().map(|w| (w.name.as_str(), w.events.as_slice()));
        let appended = self.append_read(
            &names.chain(on_postgres.iter().map(|(_, n, e)| (n.as_str(), e.as_slice()))).collect::<Vec<_>>(),
        )?;
        for store in read {
            // appended (or appended before): the outbox may forget them
            forget(&store.db, &store.events)?;
            if store.events.len() == COLLECT_BATCH {
                more.push(store.path);
            }
        }
        for (k, _, events) in on_postgres {
            forget(&self.outboxes[k].1, &events)?;
        }
        let vaults: std::collections::HashSet<&PathBuf> = vaults.iter().collect();
        more.retain(|p| vaults.contains(p));
        Ok((appended, more))
    }

    /// Appends the events read from the stores' outboxes (each store by
    /// its name) in one transaction, one flush of the log; returns how many
    /// were new (an event appended before, named by its store, id and
    /// digest, is skipped).
    fn append_read(&mut self, stores: &[(&str, &[(i64, String)])]) -> Result<usize, AuditError> {
        let mut tree = self.tree.clone();
        // each event under its source: the store's name, its id there and its digest (a store
        // restored from an older copy reuses outbox ids, but not with the same events)
        let events: Vec<(String, Event)> = stores
            .iter()
            .flat_map(|(name, events)| {
                events.iter().map(move |(id, text)| {
                    let digest = hex(&gdx_certs::pki::sha256(text.as_bytes())[..8]);
                    (format!("{name}#{id}#{digest}"), Event::from_outbox(text))
                })
            })
            .collect();
        let appended = self.db.write(|tx| {
            catch_up(tx, &mut tree)?;
            Self::append_all(tx, &mut tree, &events)
        })?;
        self.tree = tree;
        Ok(appended)
    }

    /// Like [`AuditLog::collect_from_vaults`], for vaults on PostgreSQL:
    /// the events waiting in the vaults of `nodes` (up to
    /// [`PASS_STORES_POSTGRES`] of them, read in one round trip), appended in
    /// one transaction, then forgotten there by their ids. Returns how many
    /// were appended, and the nodes whose vaults still hold events or were
    /// not read.
    pub fn collect_from_postgres(
        &mut self,
        pg: &crate::store::pg::PgVaults,
        nodes: &[gdx_common::NodeId],
    ) -> Result<(usize, Vec<gdx_common::NodeId>), AuditError> {
        let (these, rest) = nodes.split_at(nodes.len().min(PASS_STORES_POSTGRES));
        let mut more = rest.to_vec();
        // at most PASS_LIMIT events in the pass
        let limit = (PASS_LIMIT / these.len().max(1)).min(COLLECT_BATCH);
        let boxes = match pg.waiting(these, limit) {
            Ok(boxes) => boxes,
            // one vault that cannot be read holds back none of the others: each alone
            Err(_) => {
                let mut boxes = Vec::new();
                for node in these {
                    match pg.waiting(std::slice::from_ref(node), limit) {
                        Ok(b) => boxes.extend(b),
                        Err(e) => {
                            tracing::warn!(%node, error = %e, "the audit log cannot read this vault's events now; it tries again");
                            more.push(node.clone());
                        }
                    }
                }
                boxes
            }
        };
        let named: Vec<(String, &[(i64, String)])> = boxes
            .iter()
            .filter(|b| !b.events.is_empty())
            .map(|b| (format!("postgres:{}", b.names.schema), b.events.as_slice()))
            .collect();
        let appended =
            self.append_read(&named.iter().map(|(name, events)| (name.as_str(), *events)).collect::<Vec<_>>())?;
        // appended: the outboxes may forget them (one that cannot holds back none of the others;
        // read again, its events are skipped)
        if pg.forget(&boxes).is_err() {
            for b in &boxes {
                if let Err(e) = pg.forget(std::slice::from_ref(b)) {
                    tracing::warn!(node = %b.node, error = %e, "a vault's collected events cannot be forgotten now; they are read again and skipped");
                    more.push(b.node.clone());
                }
            }
        }
        more.extend(boxes.into_iter().filter(|b| b.events.len() == limit).map(|b| b.node));
        Ok((appended, more))
    }

    /// Up to [`COLLECT_BATCH`] events waiting in one store's outbox, with
    /// the connection that will delete them; None when none wait.
    fn waiting_in(&self, path: &Path) -> Result<Option<Waiting>, AuditError> {
        let name = path.strip_prefix(&self.dir).unwrap_or(path).display().to_string();
        let src = gdx_files::open_existing(path).map_err(crate::store::db::DbError::from)?;
        src.busy_timeout(Duration::from_secs(10)).map_err(crate::store::db::DbError::from)?;
        // forgetting collected events need not be flushed: collected again, they are skipped
        src.pragma_update(None, "synchronous", "NORMAL").map_err(crate::store::db::DbError::from)?;
        let db = Db::Sqlite(src);
        let has_outbox = db
            .query_opt("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_outbox'", args![], |_| {
                Ok(())
            })?
            .is_some();
        if !has_outbox {
            return Ok(None);
        }
        let events = waiting(&db)?;
        Ok((!events.is_empty()).then(|| Waiting { path: path.to_path_buf(), name, db, events }))
    }
}
