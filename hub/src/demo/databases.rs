//! The demo's department databases: the departments that `departments.toml`
//! puts on PostgreSQL or MariaDB get a database of their own in a real
//! server the demo starts ([`gdx_hub::dbservers`]), their tables loaded with
//! the generated rows, and a reader that may only SELECT, with its password
//! in a 0600 file in the agent's directory; the agent reads them over TLS,
//! verifying the server's certificate. When an engine is not installed, or
//! does not start, the demo says so and those departments publish from
//! SQLite.

use gdx_hub::dbservers::{self, Mariadb, Postgres};

use super::departments::{Department, Engine, Resource};
use super::sources::toml_str;
use super::*;

/// The servers the demo runs, each only when a department needs it and it started.
#[derive(Default)]
pub(super) struct Databases {
    pub(super) postgres: Option<Postgres>,
    pub(super) mariadb: Option<Mariadb>,
}

impl Databases {
    /// Starts the engines `province` names under `dir`, printing what it
    /// does instead for an engine that is missing or fails.
    pub(super) fn start(dir: &Path, province: &Province) -> Self {
        let needs = |engine: Engine| {
            let names: Vec<&str> =
                province.departments.iter().filter(|d| d.engine == engine).map(|d| d.name.as_str()).collect();
            (!names.is_empty()).then(|| names.join("、"))
        };
        let mut dbs = Self::default();
        if let Some(names) = needs(Engine::Postgres) {
            dbs.postgres =
                started("PostgreSQL", &names, Postgres::installed(), || Postgres::start(&dir.join("postgres")));
        }
        if let Some(names) = needs(Engine::Mariadb) {
            dbs.mariadb = started("MariaDB", &names, Mariadb::installed(), || Mariadb::start(&dir.join("mariadb")));
        }
        dbs
    }

    /// The server that holds `dept`'s tables, for messages; None for SQLite.
    pub(super) fn engine_of(&self, dept: &Department) -> Option<&'static str> {
        match (dept.engine, &self.postgres, &self.mariadb) {
            (Engine::Postgres, Some(_), _) => Some("PostgreSQL"),
            (Engine::Mariadb, _, Some(_)) => Some("MariaDB"),
            _ => None,
        }
    }

    /// Commands that open the servers' databases as the administrator, for
    /// the demo's "where to look".
    pub(super) fn hints(&self, province: &Province) -> String {
        let mut out = String::new();
        for dept in &province.departments {
            let (database, reader) = names(dept);
            let line = match (dept.engine, &self.postgres, &self.mariadb) {
                (Engine::Postgres, Some(pg), _) => format!(
                    "PGPASSWORD={} psql -h 127.0.0.1 -p {} -U {} {database}",
                    dbservers::ADMIN_PASSWORD,
                    pg.port,
                    dbservers::ADMIN
                ),
                (Engine::Mariadb, _, Some(my)) => format!(
                    "mariadb -h 127.0.0.1 -P {} -u {} -p{} {database}",
                    my.port,
                    dbservers::ADMIN,
                    dbservers::ADMIN_PASSWORD
                ),
                _ => continue,
            };
            out.push_str(&format!(
                "  {line}   {}'s database (its agent reads it as {reader}, SELECT only)\n",
                dept.name
            ));
        }
        out
    }

    /// Loads `res`'s rows into the department's database and returns the
    /// agent.toml source that reads it, or None when the department keeps
    /// its data in SQLite (by choice, or because its engine is not running).
    pub(super) fn load(
        &self,
        agent_dir: &Path,
        dept: &Department,
        res: &Resource,
        rows: &[Vec<String>],
    ) -> anyhow::Result<Option<String>> {
        let (database, reader) = names(dept);
        let (kind, port) = match (dept.engine, &self.postgres, &self.mariadb) {
            (Engine::Postgres, Some(pg), _) => {
                self.postgres_table(pg, &database, &reader, agent_dir, res, rows)?;
                ("postgres", pg.port)
            }
            (Engine::Mariadb, _, Some(my)) => {
                self.mariadb_table(my, &database, &reader, agent_dir, res, rows)?;
                ("mysql", my.port)
            }
            _ => return Ok(None),
        };
        let path = |name: &str| toml_str(&agent_dir.join(name).display().to_string());
        Ok(Some(format!(
            "{{ kind = \"{kind}\", host = \"127.0.0.1\", port = {port}, database = \"{database}\", user = \"{reader}\", password_file = {}, tls = \"verify\", ca_file = {}, table = \"{}\" }}",
            path(PASSWORD_FILE),
            path(CA_FILE),
            res.code
        )))
    }

    fn postgres_table(
        &self,
        pg: &Postgres,
        database: &str,
        reader: &str,
        agent_dir: &Path,
        res: &Resource,
        rows: &[Vec<String>],
    ) -> anyhow::Result<()> {
        if let Some(password) = new_reader(agent_dir, &pg.ca_pem)? {
            pg.script(
                "postgres",
                &format!(
                    "CREATE DATABASE {database};\nCREATE ROLE {reader} LOGIN PASSWORD '{password}';\nGRANT CONNECT ON DATABASE {database} TO {reader};\n"
                ),
            )?;
            pg.script(database, &format!("GRANT USAGE ON SCHEMA public TO {reader};\n"))?;
        }
        let columns = column_definitions(res, '"', |data_type, _| match data_type {
            "I" => "bigint",
            "Y" => "numeric(16,2)",
            "F" | "N" => "double precision",
            "D" => "date",
            _ => "text",
        });
        let mut sql = format!("CREATE TABLE {} ({columns});\n", res.code);
        insert(&mut sql, &res.code, rows, |v| format!("'{}'", v.replace('\'', "''")));
        sql.push_str(&format!("GRANT SELECT ON {} TO {reader};\n", res.code));
        pg.script(database, &sql)
    }

    fn mariadb_table(
        &self,
        my: &Mariadb,
        database: &str,
        reader: &str,
        agent_dir: &Path,
        res: &Resource,
        rows: &[Vec<String>],
    ) -> anyhow::Result<()> {
        if let Some(password) = new_reader(agent_dir, &my.ca_pem)? {
            my.script(&format!(
                "CREATE DATABASE {database} CHARACTER SET utf8mb4;\nCREATE USER '{reader}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
            ))?;
        }
        // a key column is indexed, and MySQL indexes TEXT only by a prefix
        let columns = column_definitions(res, '`', |data_type, key| match data_type {
            "I" => "BIGINT",
            "Y" => "DECIMAL(16,2)",
            "F" | "N" => "DOUBLE",
            "D" => "DATE",
            _ if key => "VARCHAR(64)",
            _ => "TEXT",
        });
        let table = format!("{database}.{}", res.code);
        let mut sql = format!("CREATE TABLE {table} ({columns});\n");
        insert(&mut sql, &table, rows, |v| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''")));
        sql.push_str(&format!("GRANT SELECT ON {table} TO '{reader}'@'127.0.0.1';\n"));
        my.script(&sql)
    }
}

/// Where an agent keeps its database password and the server's CA.
const PASSWORD_FILE: &str = "database-password";
const CA_FILE: &str = "database-ca.crt";

/// A department's database and reader: `weijian_630100`, `reader_weijian_630100`.
pub(super) fn names(dept: &Department) -> (String, String) {
    let database = match dept.node.split_once('/') {
        Some((division, name)) => format!("{name}_{division}"),
        None => dept.node.clone(),
    };
    let reader = format!("reader_{database}");
    (database, reader)
}

/// The first time for a department: a new random password in its 0600
/// file, and the server's CA beside it. None when they exist already.
fn new_reader(agent_dir: &Path, ca_pem: &str) -> anyhow::Result<Option<String>> {
    let file = agent_dir.join(PASSWORD_FILE);
    if file.exists() {
        return Ok(None);
    }
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    let password = gdx_common::token::hex(&bytes);
    gdx_files::write_new(&file, password.as_bytes(), true)?;
    std::fs::write(agent_dir.join(CA_FILE), ca_pem)?;
    Ok(Some(password))
}

/// The columns of `res`'s table, names quoted by `quote`, typed by
/// `sql_type(数据类型, is the key)`; the first column is the primary key.
fn column_definitions(res: &Resource, quote: char, sql_type: impl Fn(&str, bool) -> &'static str) -> String {
    let definitions: Vec<String> = res
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let key = i == 0;
            let ty = sql_type(&c.data_type, key);
            format!("{quote}{}{quote} {ty}{}", c.column, if key { " PRIMARY KEY" } else { "" })
        })
        .collect();
    definitions.join(", ")
}

/// Appends INSERT statements of `rows` into `table` (values quoted by `quote`), 100 rows each.
fn insert(sql: &mut String, table: &str, rows: &[Vec<String>], quote: impl Fn(&str) -> String) {
    for chunk in rows.chunks(100) {
        let values: Vec<String> =
            chunk.iter().map(|r| format!("({})", r.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", "))).collect();
        sql.push_str(&format!("INSERT INTO {table} VALUES {};\n", values.join(",\n")));
    }
}

/// Starts an engine, or prints why the departments it would hold use SQLite.
fn started<T>(engine: &str, names: &str, installed: bool, start: impl FnOnce() -> anyhow::Result<T>) -> Option<T> {
    let why = if !installed {
        format!("{engine} is not installed (install it with {})", dbservers::INSTALL)
    } else {
        match start() {
            Ok(server) => {
                println!("started a {engine} server for {names}");
                return Some(server);
            }
            Err(e) => format!("{engine} did not start: {e:#}"),
        }
    };
    println!("{why}; {names} publish from SQLite instead");
    None
}
