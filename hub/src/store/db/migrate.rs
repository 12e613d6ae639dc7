//! `gdx-hub migrate --to postgres`: a store's SQLite file copied into its
//! schema on PostgreSQL in one transaction, then verified table by table
//! (the same rows, by a digest of every row's values), then the file set
//! aside as `NAME.migrated` so nothing reads it again.
//!
//! The departments' vault files follow, each into its schema
//! ([`crate::store::pg::PgVaults::import`]) after the audit log has taken
//! the events waiting in them.
//!
//! Killed before the commit, PostgreSQL holds nothing of it and the file is
//! untouched: run it again. Killed after the commit but before the file is
//! set aside, a second run finds the same rows on both sides and only sets
//! the file aside. A schema that holds other rows is never written over.

use std::path::{Path, PathBuf};

use gdx_files::quote_ident;

use super::{Db, DbError, Row, Sql, Value, Which};
use crate::args;
use crate::store::HubPaths;

/// What was copied of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The SQLite file, now set aside under this name.
    pub set_aside: PathBuf,
    /// Tables and their rows, in the file's order.
    pub tables: Vec<(String, u64)>,
    /// False when an earlier run had copied it already.
    pub copied: bool,
}

/// A table of the SQLite file: its name, columns, and its row number
/// column (an `INTEGER PRIMARY KEY`, whose sequence continues after the copy).
struct Table {
    name: String,
    columns: Vec<String>,
    row_number: Option<String>,
    /// Per column: PostgreSQL keeps it as text, so a number or bytes in
    /// the file (an untyped column of a base's fields) are copied, and
    /// compared, as their text.
    as_text: Vec<bool>,
}

/// The file's tables, without virtual tables (a base's R-tree, which
/// PostgreSQL does not need) and their shadow tables.
fn tables(file: &rusqlite::Connection) -> Result<Vec<Table>, DbError> {
    let names: Vec<String> = file.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
           AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%'
           AND name NOT IN (SELECT name FROM pragma_table_list WHERE type = 'shadow')
         ORDER BY rowid",
        args![],
        |r| r.get(0),
    )?;
    let mut out = Vec::new();
    for name in names {
        let columns: Vec<(String, String, i64)> =
            file.query("SELECT name, upper(type), pk FROM pragma_table_info(?1) ORDER BY cid", args![name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        let keys: Vec<&(String, String, i64)> = columns.iter().filter(|c| c.2 > 0).collect();
        let row_number = match keys.as_slice() {
            [(k, t, _)] if t == "INTEGER" => Some(k.clone()),
            _ => None,
        };
        let as_text = vec![false; columns.len()];
        out.push(Table { name, columns: columns.into_iter().map(|c| c.0).collect(), row_number, as_text });
    }
    Ok(out)
}

/// The rows of `table` on `db`: how many, and a digest of them all that
/// does not depend on their order. On PostgreSQL `db` is a transaction,
/// and the rows come through a cursor, a few thousand at a time.
fn digest(db: &impl Sql, table: &Table) -> Result<(u64, [u8; 32]), DbError> {
    let list = table.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    let select = format!("SELECT {list} FROM {}", quote_ident(&table.name));
    let mut hashes = Vec::new();
    if db.postgres() {
        // a cursor named for the query: a FETCH is prepared once per connection, for rows of one shape
        let cursor = format!("gdx_digest_{}", gdx_common::token::hex(&gdx_certs::pki::sha256(select.as_bytes())[..8]));
        db.execute_batch(&format!("DECLARE {cursor} NO SCROLL CURSOR FOR {select}"))?;
        loop {
            let before = hashes.len();
            db.query(&format!("FETCH 5000 FROM {cursor}"), args![], |r| {
                hashes.push(row_hash(r, &table.as_text));
                Ok(())
            })?;
            if hashes.len() == before {
                break;
            }
        }
        db.execute_batch(&format!("CLOSE {cursor}"))?;
    } else {
        db.query(&select, args![], |r| {
            hashes.push(row_hash(r, &table.as_text));
            Ok(())
        })?;
    }
    hashes.sort_unstable();
    let mut all = ring::digest::Context::new(&ring::digest::SHA256);
    for h in &hashes {
        all.update(h);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(all.finish().as_ref());
    Ok((hashes.len() as u64, out))
}

/// `v` as a column kept as text holds it (see [`Table::as_text`]).
fn as_text(v: Value) -> Value {
    match v {
        Value::Integer(i) => Value::Text(i.to_string()),
        Value::Real(f) => Value::Text(f.to_string()),
        Value::Blob(b) => Value::Text(gdx_common::token::hex(&b)),
        v => v,
    }
}

fn row_hash(r: &Row, text: &[bool]) -> [u8; 32] {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    for i in 0..r.len() {
        let v = r.get::<Value>(i).unwrap_or(Value::Null);
        let v = if text.get(i) == Some(&true) { as_text(v) } else { v };
        match v {
            Value::Null => h.update(b"n"),
            Value::Integer(v) => {
                h.update(b"i");
                h.update(&v.to_be_bytes());
            }
            Value::Real(v) => {
                h.update(b"r");
                h.update(&v.to_bits().to_be_bytes());
            }
            Value::Text(t) => {
                h.update(b"t");
                h.update(&(t.len() as u64).to_be_bytes());
                h.update(t.as_bytes());
            }
            Value::Blob(b) => {
                h.update(b"b");
                h.update(&(b.len() as u64).to_be_bytes());
                h.update(&b);
            }
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(h.finish().as_ref());
    out
}

/// Copies the SQLite store at `file` into `to` (a store on PostgreSQL,
/// its tables made), verifies it, and sets the file aside.
pub fn copy(file: &Path, to: &Db) -> Result<Migrated, DbError> {
    let Db::Postgres(pg) = to else {
        return Err(DbError::Refused("migrate copies into PostgreSQL; hub.toml names no PostgreSQL store".into()));
    };
    let source = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // one read transaction: the copy is of one moment of the file
    source.execute_batch("BEGIN")?;
    let mut tables = tables(&source)?;
    for t in &mut tables {
        let text: Vec<String> = to.query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = ?1 AND table_name = ?2 AND data_type = 'text'",
            args![pg.schema(), t.name],
            |r| r.get(0),
        )?;
        t.as_text = t.columns.iter().map(|c| text.contains(c)).collect();
    }
    // decided and done under the store's lock: nobody writes between the look and the copy
    let copied = to.write(|tx| {
        let mut held = 0u64;
        for t in &tables {
            held += digest(tx, t)?.0;
        }
        if held > 0 {
            return Ok::<_, DbError>(false);
        }
        for t in &tables {
            let list = t.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
            let marks = (1..=t.columns.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
            let insert = format!("INSERT INTO {} ({list}) VALUES ({marks})", quote_ident(&t.name));
            // row by row as the file is read: a table larger than memory is copied too
            source.query(&format!("SELECT {list} FROM {}", quote_ident(&t.name)), args![], |r| {
                let mut row: Vec<Value> = (0..r.len()).map(|i| r.get::<Value>(i)).collect::<Result<_, _>>()?;
                for (v, text) in row.iter_mut().zip(&t.as_text) {
                    if *text {
                        *v = as_text(std::mem::replace(v, Value::Null));
                    }
                }
                tx.execute(&insert, &row).map(|_| ())
            })?;
            if let Some(k) = &t.row_number {
                // the next row number continues after the copied ones
                tx.execute(
                    &format!(
                        "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(?1, ?2),
                                (SELECT coalesce(max({k}), 0) + 1 FROM {t}), false)",
                        k = quote_ident(k),
                        t = quote_ident(&t.name)
                    ),
                    args![format!("{}.{}", pg.schema(), quote_ident(&t.name)), k.as_str()],
                )?;
            }
        }
        Ok(true)
    })?;
    let mut counted = Vec::new();
    for t in &tables {
        let (n, here) = digest(&source, t)?;
        let (m, there) = to.write(|tx| digest(tx, t))?;
        if (n, here) != (m, there) {
            return Err(DbError::Refused(if copied {
                format!(
                    "table {} of {} came out different in {} ({n} rows, {m} there); nothing was set aside: look at the database server's log, then run migrate again",
                    t.name,
                    file.display(),
                    pg.describe()
                )
            } else {
                format!(
                    "{} already holds other rows in table {} ({m}, against {n} in {}); migrate only into an empty database",
                    pg.describe(),
                    t.name,
                    file.display()
                )
            }));
        }
        counted.push((t.name.clone(), n));
    }
    source.execute_batch("COMMIT")?;
    drop(source);
    let set_aside = file.with_extension("db.migrated");
    std::fs::rename(file, &set_aside).map_err(|e| {
        DbError::Refused(format!(
            "copied and verified, but cannot set {} aside: {e}; move it away by hand",
            file.display()
        ))
    })?;
    for ext in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(file.with_extension(ext));
    }
    Ok(Migrated { set_aside, tables: counted, copied })
}

/// True when the SQLite file `file` holds rows in any table: records that
/// would be left behind by a store on PostgreSQL.
pub fn holds_rows(file: &Path) -> Result<bool, DbError> {
    if !file.exists() {
        return Ok(false);
    }
    let conn = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let tables = tables(&conn).map_err(|e| match e {
        DbError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::NotADatabase => {
            DbError::Refused(format!(
                "{} cannot be read as SQLite (it is encrypted with at_rest_key); a hub with encrypted stores stays on SQLite for now: remove the store line from hub.toml",
                file.display()
            ))
        }
        e => e,
    })?;
    for t in tables {
        if conn.query_opt(&format!("SELECT 1 FROM {} LIMIT 1", quote_ident(&t.name)), args![], |_| Ok(()))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Moves every store of the hub at `paths` that the storage layer holds
/// from its SQLite file into PostgreSQL (hub.toml's `store`); a store
/// whose file was set aside already is skipped. Refused while the hub runs.
pub fn to_postgres(paths: &HubPaths, now: i64) -> Result<Vec<(String, Migrated)>, String> {
    let hub_db = Which::Hub.file(paths);
    if hub_db.exists() {
        let store = crate::store::Store::open_file(&hub_db).map_err(|e| e.to_string())?;
        if store.hub_running(now).map_err(|e| e.to_string())? {
            return Err("gdx-hub run is running on this data directory; stop it first, then migrate".into());
        }
    }
    // the departments' vault files are checked before anything moves: one that cannot move leaves all in place
    let vaults = vault_files(paths)?;
    if !hub_db.exists() && !vaults.is_empty() {
        // hub.db moved already: the heartbeat is read where it is now
        let store = crate::store::Store::open(paths).map_err(|e| e.to_string())?;
        if store.hub_running(now).map_err(|e| e.to_string())? {
            return Err("gdx-hub run is running on this data directory; stop it first, then migrate".into());
        }
    }
    if !vaults.is_empty() {
        // the database's role is checked before anything moves too
        let config = crate::config::HubConfig::load(paths).map_err(|e| e.to_string())?;
        crate::store::vault::Vaults::for_hub(&paths.dir, &config).map_err(|e| e.to_string())?;
    }
    for (_, file) in &vaults {
        check_vault(file)?;
    }
    let bases = base_files(paths)?;
    // so are exchange.db and the base files, which at_rest_key may have encrypted too
    for file in std::iter::once(Which::Exchange.file(paths)).chain(bases.iter().map(|(_, f)| f.clone())) {
        holds_rows(&file).map_err(|e| format!("{e}; nothing was moved"))?;
    }
    let mut done = Vec::new();
    for which in [Which::Hub, Which::Catalog, Which::Audit, Which::Exchange] {
        let file = which.file(paths);
        if !file.exists() {
            continue;
        }
        let schema = which.tables();
        let Some(db) = Db::postgres_of(paths, which, &schema).map_err(|e| e.to_string())? else {
            return Err(format!(
                "{} keeps no PostgreSQL store; add store = {{ kind = \"postgres\", url_file = \"…\" }} to it first (docs/operator.md, \"Moving a hub to PostgreSQL\")",
                paths.config().display()
            ));
        };
        // the file's tables made as they are now, newer columns included
        // the file brought to this version's layout first, as its store opens it
        let mut current = Db::sqlite(&file, &schema).map_err(|e| e.to_string())?;
        match which {
            Which::Hub => drop(crate::store::Store::open_file(&file).map_err(|e| e.to_string())?),
            Which::Audit => crate::audit::upgrade(&current).map_err(|e| e.to_string())?,
            Which::Exchange => crate::exchange::upgrade(&mut current, &paths.dir).map_err(|e| e.to_string())?,
            Which::Catalog | Which::Base(_) => {}
        }
        drop(current);
        let migrated = copy(&file, &db).map_err(|e| e.to_string())?;
        done.push((which.name().to_owned(), migrated));
    }
    for (base, file) in &bases {
        done.push((Which::base(&base.name).name().to_owned(), move_base(paths, base, file)?));
    }
    if !vaults.is_empty() {
        done.extend(move_vaults(paths, &vaults)?);
    }
    logs_past_progress(paths)?;
    Ok(done)
}

/// Makes each base member's log on PostgreSQL number on after what its
/// base has read of it ([`crate::store::pg::PgVaults::base_log_past`]).
fn logs_past_progress(paths: &HubPaths) -> Result<(), String> {
    let bases = crate::base::BasesConfig::load(&paths.dir)?;
    if bases.bases.is_empty() {
        return Ok(());
    }
    let config = crate::config::HubConfig::load(paths).map_err(|e| e.to_string())?;
    let vaults = crate::store::vault::Vaults::for_hub(&paths.dir, &config).map_err(|e| e.to_string())?;
    let Some(pg) = vaults.postgres() else { return Ok(()) };
    for b in &bases.bases {
        let which = Which::base(&b.name);
        let Some(db) = Db::postgres_of(paths, which, &which.tables()).map_err(|e| e.to_string())? else { continue };
        let read: Vec<(String, i64)> = db
            .query("SELECT member, log_id FROM progress", args![], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| e.to_string())?;
        for (member, upto) in read {
            let Some(node) = member.rsplit_once('/').and_then(|(n, _)| gdx_common::NodeId::parse(n).ok()) else {
                continue;
            };
            pg.base_log_past(&node, upto).map_err(|e| format!("{member}: {e}"))?;
        }
    }
    Ok(())
}

/// The base databases' files, each with its declaration in bases.toml; a
/// file no base declares is refused before anything moves.
fn base_files(paths: &HubPaths) -> Result<Vec<(crate::base::BaseConfig, PathBuf)>, String> {
    let Ok(dir) = std::fs::read_dir(paths.bases()) else { return Ok(Vec::new()) };
    let declared = crate::base::BasesConfig::load(&paths.dir)?;
    let mut out = Vec::new();
    for e in dir.filter_map(Result::ok) {
        let path = e.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".db")) else {
            continue;
        };
        let Some(base) = declared.bases.iter().find(|b| b.name == name) else {
            return Err(format!(
                "{} is a base database that bases.toml no longer declares; declare it again, or move the file out of {} first; nothing was moved",
                path.display(),
                paths.bases().display()
            ));
        };
        out.push((base.clone(), path));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Moves base database `base`'s file into its schema: the file brought to
/// bases.toml's fields first, as `gdx-hub run` opens it; the schema given
/// every column of the file's base table (a field removed since included),
/// kept as text; then copied and verified as every store is ([`copy`]).
fn move_base(paths: &HubPaths, base: &crate::base::BaseConfig, file: &Path) -> Result<Migrated, String> {
    let which = Which::base(&base.name);
    let at = |e: String| format!("{}: {e}", file.display());
    let current = Db::sqlite(file, &which.tables()).map_err(|e| at(e.to_string()))?;
    crate::base::prepare(&current, &crate::base::field_columns(base)).map_err(at)?;
    let columns: Vec<String> = crate::base::columns_of_base(&current)
        .map_err(|e| at(e.to_string()))?
        .into_iter()
        .filter(|c| c != "key")
        .collect();
    drop(current);
    let Some(db) = Db::postgres_of(paths, which, &which.tables()).map_err(|e| e.to_string())? else {
        return Err(format!("{} keeps no PostgreSQL store", paths.config().display()));
    };
    crate::base::prepare(&db, &columns).map_err(at)?;
    copy(file, &db).map_err(|e| at(e.to_string()))
}

/// How many SQLite files (`*.db`) are in `dir` (the vaults' or the bases'
/// folder): with the stores on PostgreSQL, their rows would be left behind.
pub fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "db")).count())
        .unwrap_or(0)
}

/// The departments' vault files, with their nodes, in name order.
fn vault_files(paths: &HubPaths) -> Result<Vec<(gdx_common::NodeId, PathBuf)>, String> {
    let Ok(dir) = std::fs::read_dir(paths.vaults()) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for e in dir.filter_map(Result::ok) {
        let path = e.path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".db")) else {
            continue;
        };
        let node = stem
            .split_once('-')
            .and_then(|(division, org)| gdx_common::NodeId::parse(&format!("{division}/{org}")).ok())
            .ok_or_else(|| {
                format!(
                    "{} is not named as a department's vault (DIVISION-ORG.db); move it out of {} first",
                    path.display(),
                    paths.vaults().display()
                )
            })?;
        out.push((node, path));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Refuses a vault file that cannot move, saying why and what to do.
fn check_vault(file: &Path) -> Result<(), String> {
    let refused = |why: String| format!("{} cannot move to PostgreSQL: {why}; nothing was moved", file.display());
    if holds_rows(file).map_err(|e| refused(e.to_string()))? {
        // brought to this version's layout, and its write-ahead log folded in, before it is read
        let conn = crate::store::vault::open_vault(file).map_err(|e| refused(e.to_string()))?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").map_err(|e| refused(e.to_string()))?;
        drop(conn);
        let conn = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| refused(e.to_string()))?;
        crate::store::pg::check_file(&conn).map_err(|e| refused(e.to_string()))?;
    }
    Ok(())
}

/// Moves every vault file into its department's schema, verified, and sets
/// it aside; the audit log first takes the events waiting in them.
fn move_vaults(paths: &HubPaths, files: &[(gdx_common::NodeId, PathBuf)]) -> Result<Vec<(String, Migrated)>, String> {
    let config = crate::config::HubConfig::load(paths).map_err(|e| e.to_string())?;
    // the audit log (on PostgreSQL now) takes the events waiting in the files first: an event left
    // there would be logged again under the schema's name
    let mut log = crate::audit::AuditLog::open(&paths.dir, &config.hub_id().to_string()).map_err(|e| e.to_string())?;
    let mut todo: Vec<PathBuf> = files.iter().map(|(_, f)| f.clone()).collect();
    for _ in 0..1000 {
        let (_, more) =
            log.collect_from_vaults(&todo).map_err(|e| format!("the audit log cannot take the vaults' events: {e}"))?;
        if more.is_empty() {
            break;
        }
        todo = more;
    }
    drop(log);
    let vaults = crate::store::vault::Vaults::for_hub(&paths.dir, &config).map_err(|e| e.to_string())?;
    let Some(pg) = vaults.postgres() else { return Ok(Vec::new()) };
    let mut done = Vec::new();
    for (node, file) in files {
        let mut tables = Vec::new();
        let mut copied = false;
        if holds_rows(file).map_err(|e| e.to_string())? {
            let conn = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            conn.execute_batch("BEGIN").map_err(|e| format!("{}: {e}", file.display()))?;
            let imported = pg.import(node, &conn).map_err(|e| format!("{} ({node}): {e}", file.display()))?;
            drop(conn);
            tables = imported.tables;
            copied = imported.copied;
        }
        let set_aside = file.with_extension("db.migrated");
        std::fs::rename(file, &set_aside).map_err(|e| {
            format!("{} copied and verified, but cannot be set aside: {e}; move it away by hand", file.display())
        })?;
        for ext in ["db-wal", "db-shm"] {
            let _ = std::fs::remove_file(file.with_extension(ext));
        }
        let name = format!("vaults/{}", file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        done.push((name, Migrated { set_aside, tables, copied }));
    }
    Ok(done)
}
