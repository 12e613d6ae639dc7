//! `agent.toml`: the agent's configuration, and the files kept beside it.
//!
//! `gdx-agent enroll` writes the file with a comment on every key, and
//! writes it last: its presence means the enrolment completed. Unknown keys
//! are refused so that a typo is reported instead of silently ignored.

use std::path::{Path, PathBuf};

use gdx_common::NodeId;
use gdx_common::data::{ResourceCode, check_column_name};
use gdx_common::units::parse_duration;
use serde::{Deserialize, Serialize};

/// Default data directory of an agent.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/gdx-agent";

/// The contents of `agent.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This node's id, bound into its certificate at enrolment.
    pub node: NodeId,
    /// The node id of the hub this agent syncs with.
    pub hub: NodeId,
    /// `host:port` of the hub's QUIC endpoint.
    pub hub_addr: String,
    /// The hub's portal, `https://host:port`, for `gdx-agent login`; absent,
    /// the host of `hub_addr` on port 8443.
    #[serde(default)]
    pub portal: Option<String>,
    /// The SQLite database that data received under grants is written to
    /// (relative paths start at the data directory).
    #[serde(default = "default_received")]
    pub received: PathBuf,
    /// A file holding the key (64 hex digits, 0600) under which the
    /// received database is kept encrypted; absent, it is plain.
    #[serde(default)]
    pub at_rest_key: Option<PathBuf>,
    /// `IP:PORT` on a loopback address where Prometheus scrapes `GET /metrics`; absent, none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// QUIC's congestion control, `"bbr"` (absent) or `"cubic"`
    /// (`gdx_certs::tls::Congestion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub congestion: Option<String>,
    /// The resources this agent publishes, as `[[resource]]` tables (after
    /// loading, also one `items_NAME` per `[[items]]` list).
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceConfig>,
    /// The department's 政务服务事项 lists (权责清单), as `[[items]]` tables.
    #[serde(default, rename = "items", skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemsConfig>,
}

/// One 政务服务事项 list: an XLSX or CSV file the department keeps, synced
/// as resource `items_NAME`, each row checked as an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemsConfig {
    /// The list's name (letters, digits, _), such as `quanze`.
    pub name: String,
    /// The workbook (.xlsx) or CSV file (relative paths start at agent.toml's directory).
    pub file: PathBuf,
    /// The sheet to read; the first when absent.
    #[serde(default)]
    pub sheet: Option<String>,
    /// A CSV file's encoding: `auto` (UTF-8 if valid, else GBK), `utf-8` or `gbk`.
    #[serde(default)]
    pub encoding: Encoding,
    /// The department's name, for items whose 实施主体 is empty.
    #[serde(default)]
    pub department: Option<String>,
    /// How often `gdx-agent run` reads it (s, m, h, d).
    #[serde(default = "default_schedule")]
    pub schedule: String,
}

/// The prefix of the resources that carry `[[items]]` lists.
pub const ITEMS_PREFIX: &str = "items_";

/// One published resource: where its rows come from and what keys them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// The resource code, unique within this agent (for example `hukou`).
    pub code: ResourceCode,
    /// The key column(s): together they identify a row.
    pub key: Vec<String>,
    /// How often `gdx-agent run` syncs it (s, m, h, d).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Where the rows come from.
    pub source: SourceConfig,
    /// A column that grows whenever a row changes (`updated_at`, a row
    /// version), for a database source: a sync then reads only the rows at
    /// or past the last watermark, and deletions wait for the reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<String>,
    /// How often a resource with `changed` is read whole, to find
    /// deletions (s, m, h, d); 24h when absent. `gdx-agent sync --full` reads
    /// it whole now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<String>,
    /// The resource's catalogue entry: a `[resource.catalog]` table, or the
    /// path of a TOML file holding one (relative paths start at agent.toml's
    /// directory). `gdx-agent sync` publishes it with the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogDecl>,
    /// Accept legacy 15-digit ID numbers in items of kind 公民身份号码,
    /// sending them converted to 18 digits; refused (quarantined) otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_ids: bool,
}

/// Where a resource's catalogue entry is declared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CatalogDecl {
    /// A TOML file holding the entry's fields at its top level.
    File(PathBuf),
    /// The entry's fields, inline in agent.toml.
    Inline(toml::Table),
}

/// A resource's source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// A SQLite database: a whole table, or a read-only SELECT query.
    Sqlite {
        /// Path of the database file (opened read-only).
        path: PathBuf,
        /// The table to publish; give either `table` or `query`.
        table: Option<String>,
        /// A SELECT query whose result is published.
        query: Option<String>,
    },
    /// A folder of CSV files with a header row; together they form the extract.
    Csv {
        /// The drop folder.
        dir: PathBuf,
        /// `auto` (UTF-8 if valid, else GBK), `utf-8` or `gbk`.
        #[serde(default)]
        encoding: Encoding,
    },
    /// A PostgreSQL database (also KingbaseES, openGauss/GaussDB, Highgo).
    Postgres(DbSource),
    /// A MySQL database (also MariaDB, TiDB, OceanBase, GoldenDB).
    Mysql(DbSource),
    /// A 政务服务事项 list, declared as `[[items]]` (never as a `[[resource]]` source).
    #[serde(skip)]
    Items(ItemsSource),
}

/// Where an `[[items]]` list is read from, and for whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemsSource {
    pub file: PathBuf,
    pub sheet: Option<String>,
    pub encoding: Encoding,
    /// The level of the department keeping it (an empty 层级 means its own).
    pub level: gdx_common::DivisionLevel,
    /// Its name, for an empty 实施主体.
    pub department: String,
}

/// A database server to read from: where, as whom, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSource {
    pub host: String,
    /// The server's port (by default 5432 for PostgreSQL, 3306 for MySQL).
    pub port: Option<u16>,
    pub database: String,
    pub user: String,
    /// A file holding the password (mode 0600), or …
    pub password_file: Option<PathBuf>,
    /// … the environment variable holding it. Never the password itself.
    pub password_env: Option<String>,
    /// `off`, `required` (encrypted, the server not verified) or `verify`
    /// (the server's certificate checked against `ca_file` and `host`).
    #[serde(default)]
    pub tls: DbTls,
    pub ca_file: Option<PathBuf>,
    /// The table to publish (`schema.table` allowed); give either `table` or `query`.
    pub table: Option<String>,
    /// A SELECT query whose result is published.
    pub query: Option<String>,
}

/// TLS to a database server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbTls {
    #[default]
    Off,
    Required,
    Verify,
}

impl DbSource {
    /// The rules serde cannot express.
    pub fn check(&self) -> Result<(), String> {
        match (&self.table, &self.query) {
            (Some(_), Some(_)) | (None, None) => {
                return Err("give exactly one of table or query in the source".into());
            }
            _ => {}
        }
        match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => return Err("give either password_file or password_env, not both".into()),
            (None, None) => {
                return Err(
                    "the source needs password_file (a file of mode 0600 holding the password) or password_env (the environment variable holding it)".into(),
                );
            }
            _ => {}
        }
        if self.tls == DbTls::Verify && self.ca_file.is_none() {
            return Err("tls = \"verify\" needs ca_file: the CA certificate (PEM) that issued the server's".into());
        }
        Ok(())
    }

    /// The password, from its file (refused unless only its owner can read it) or variable.
    pub fn password(&self) -> Result<String, String> {
        match (&self.password_file, &self.password_env) {
            (Some(file), _) => gdx_files::read_private(file)
                .map(|p| p.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| format!("cannot read the password file {}: {e}", file.display())),
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| format!("the environment variable {var} (password_env) is not set for gdx-agent")),
            (None, None) => Err("no password_file or password_env".into()),
        }
    }
}

/// Text encoding of CSV files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "gbk")]
    Gbk,
}

fn default_received() -> PathBuf {
    PathBuf::from("received.db")
}

fn default_schedule() -> String {
    "15m".to_owned()
}

impl ResourceConfig {
    /// The schedule in seconds.
    pub fn schedule_secs(&self) -> Result<i64, String> {
        parse_duration(&self.schedule).map_err(|e| format!("resource {}: schedule {e}", self.code))
    }
}

/// Where an agent keeps its files.
#[derive(Clone, Debug)]
pub struct AgentPaths {
    pub dir: PathBuf,
}

impl AgentPaths {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("agent.toml")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("agent.key")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.join("agent.crt")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.db")
    }
    /// The database received data goes to, as `config` names it.
    pub fn received(&self, config: &AgentConfig) -> PathBuf {
        self.dir.join(&config.received)
    }
}

/// Failures reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not enrolled yet.
    #[error(
        "{0} holds no enrolled agent (agent.toml is missing); enrol first with `gdx-agent enroll --token TOKEN`, or pass the right --data directory"
    )]
    Missing(String),
    /// agent.toml cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// agent.toml is not valid.
    #[error("{path} is not a valid agent configuration: {message}")]
    Invalid { path: String, message: String },
}

impl AgentConfig {
    /// Loads `agent.toml` from the data directory.
    pub fn load(paths: &AgentPaths) -> Result<Self, ConfigError> {
        let path = paths.config();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing(paths.dir.display().to_string()));
            }
            Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
        };
        let invalid = |message: String| ConfigError::Invalid { path: path.display().to_string(), message };
        let mut config: AgentConfig = toml::from_str(&text).map_err(|e| invalid(e.message().to_owned()))?;
        config.check().map_err(invalid)?;
        if let Some(name) = &config.congestion {
            gdx_certs::tls::use_congestion(gdx_certs::tls::Congestion::parse(name).map_err(invalid)?);
        }
        for list in &config.items {
            let file = paths.dir.join(&list.file);
            config.resources.push(ResourceConfig {
                code: ResourceCode::parse(&format!("{ITEMS_PREFIX}{}", list.name))
                    .map_err(|e| invalid(format!("[[items]] {:?}: the name {e}", list.name)))?,
                key: vec!["basic_code".into()],
                schedule: list.schedule.clone(),
                source: SourceConfig::Items(ItemsSource {
                    file,
                    sheet: list.sheet.clone(),
                    encoding: list.encoding,
                    level: config.node.division().level(),
                    department: list.department.clone().unwrap_or_else(|| config.node.to_string()),
                }),
                changed: None,
                reconcile: None,
                catalog: None,
                legacy_ids: false,
            });
        }
        // a relative path is the data directory's, whatever directory the agent runs in (the
        // service runs in /): Path::join keeps an absolute one as it is
        for r in &mut config.resources {
            if let Some(CatalogDecl::File(p)) = &mut r.catalog {
                *p = paths.dir.join(&*p);
            }
            match &mut r.source {
                SourceConfig::Sqlite { path, .. } => *path = paths.dir.join(&*path),
                SourceConfig::Csv { dir, .. } => *dir = paths.dir.join(&*dir),
                SourceConfig::Postgres(db) | SourceConfig::Mysql(db) => {
                    for file in [&mut db.password_file, &mut db.ca_file].into_iter().flatten() {
                        *file = paths.dir.join(&*file);
                    }
                }
                SourceConfig::Items(_) => {}
            }
        }
        if let Some(key) = &config.at_rest_key {
            // a relative path is the data directory's, as the other files' are
            let key = gdx_files::at_rest::AtRestKey::load(&paths.dir.join(key)).map_err(|e| invalid(e.to_string()))?;
            gdx_files::at_rest::encrypt_under(&paths.received(&config), key);
        }
        Ok(config)
    }

    /// Rules serde cannot express: unique codes, plain key names, one of
    /// table or query, a valid schedule.
    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        let mut lists = std::collections::HashSet::new();
        for list in &self.items {
            if !lists.insert(&list.name) {
                return Err(format!("[[items]] {:?} is declared twice; give each list its own name", list.name));
            }
            parse_duration(&list.schedule).map_err(|e| format!("[[items]] {:?}: schedule {e}", list.name))?;
        }
        for r in &self.resources {
            if r.code.as_str().starts_with(ITEMS_PREFIX) {
                return Err(format!(
                    "resource {}: codes starting with {ITEMS_PREFIX} are kept for [[items]] lists; rename it",
                    r.code
                ));
            }
            if !seen.insert(r.code.clone()) {
                return Err(format!("resource {} is declared twice; give each [[resource]] its own code", r.code));
            }
            if r.key.is_empty() {
                return Err(format!(
                    "resource {}: key is empty; name the column(s) that identify a row, such as key = [\"id\"]",
                    r.code
                ));
            }
            for k in &r.key {
                check_column_name(k).map_err(|e| format!("resource {}: key {e}", r.code))?;
            }
            r.schedule_secs()?;
            if let SourceConfig::Sqlite { table, query, .. } = &r.source {
                match (table, query) {
                    (Some(t), None) => check_column_name(t).map_err(|_| {
                        format!("resource {}: table {t:?} is not a plain name (letters, digits, _)", r.code)
                    })?,
                    (None, Some(_)) => {}
                    _ => {
                        return Err(format!(
                            "resource {}: give either table or query for a sqlite source, not both or neither",
                            r.code
                        ));
                    }
                }
            }
            if let Some(col) = &r.changed {
                if matches!(r.source, SourceConfig::Csv { .. }) {
                    return Err(format!(
                        "resource {}: changed = … reads by watermark from a database; a CSV drop is read whole",
                        r.code
                    ));
                }
                check_column_name(col).map_err(|e| format!("resource {}: changed {e}", r.code))?;
            }
            if r.reconcile.is_some() && r.changed.is_none() {
                return Err(format!(
                    "resource {}: reconcile applies to a resource read by watermark; add changed = \"…\" or remove reconcile",
                    r.code
                ));
            }
            if let Some(every) = &r.reconcile {
                gdx_common::units::parse_duration(every)
                    .map_err(|e| format!("resource {}: reconcile = {every:?}: {e}", r.code))?;
            }
            if let SourceConfig::Postgres(db) | SourceConfig::Mysql(db) = &r.source {
                db.check().map_err(|e| format!("resource {}: {e}", r.code))?;
                if let Some(t) = &db.table
                    && t.split('.').any(|part| check_column_name(part).is_err())
                {
                    return Err(format!(
                        "resource {}: table {t:?} is not a plain name (letters, digits, _; schema.table allowed)",
                        r.code
                    ));
                }
            }
        }
        Ok(())
    }

    /// The resource with `code`.
    pub fn resource(&self, code: &str) -> Option<&ResourceConfig> {
        self.resources.iter().find(|r| r.code.as_str() == code)
    }

    /// The file text, with a comment on every key.
    pub fn to_commented_toml(&self) -> String {
        let q = |s: String| toml::Value::String(s).to_string();
        format!(
            "# GDX agent configuration, written by `gdx-agent enroll`.\n\
             # Restart `gdx-agent run` after editing. Keys not listed here are refused.\n\
             \n\
             # This node's id (DIVISION/ORG). It is bound into the certificate in\n\
             # agent.crt; changing it here does not change who the hub thinks you are.\n\
             node = {}\n\
             \n\
             # The node id of the hub this agent syncs with.\n\
             hub = {}\n\
             \n\
             # host:port of the hub's QUIC endpoint (UDP), or several separated by commas\n\
             # when the hub runs on several machines. Change it if the hub moves.\n\
             hub_addr = {}\n\
             \n\
             # The hub's portal, for `gdx-agent login` (by default the host of hub_addr, port 8443).\n\
             {}\n\
             \n\
             # SQLite database that data received under grants is written to, one\n\
             # table per grant (relative to this directory); see docs/exchange.md.\n\
             received = {}\n\
             \n\
             # Keep the received database encrypted at rest (SQLCipher) under the key in\n\
             # this file: 64 hex digits, mode 0600, kept apart from this directory\n\
             # (`openssl rand -hex 32 > /etc/gdx/agent-at-rest.key`).\n\
             # at_rest_key = \"/etc/gdx/agent-at-rest.key\"\n\
             \n\
             # QUIC's congestion control: \"bbr\" (the default) fills a lossy satellite\n\
             # link; \"cubic\" is gentler on a link shared with other traffic.\n\
             # congestion = \"cubic\"\n\
             \n\
             # Resources this agent publishes: add one [[resource]] table per extract.\n\
             # A SQLite table (or a SELECT query) or a folder of CSV files; see docs/installer.md.\n\
             #\n\
             # [[resource]]\n\
             # code = \"hukou\"               # resource code, unique within this agent\n\
             # key = [\"id_number\"]          # column(s) that identify a row\n\
             # schedule = \"15m\"             # how often `gdx-agent run` syncs it\n\
             # source = {{ kind = \"sqlite\", path = \"/data/hukou.db\", table = \"people\" }}\n\
             #\n\
             # [[resource]]\n\
             # code = \"dibao\"\n\
             # key = [\"证件号码\"]\n\
             # source = {{ kind = \"csv\", dir = \"/data/drop/dibao\", encoding = \"auto\" }}  # auto, utf-8 or gbk\n\
             \n\
             # 政务服务事项 lists (权责清单) kept as XLSX or CSV: one [[items]] table each;\n\
             # see docs/items.md.\n\
             #\n\
             # [[items]]\n\
             # name = \"quanze\"              # synced as resource items_quanze\n\
             # file = \"/data/权责清单.xlsx\"  # .xlsx (first sheet, or sheet = \"…\") or .csv (UTF-8 or GBK)\n\
             # department = \"大通县市场监督管理局\"   # for rows whose 实施主体 is empty\n",
            q(self.node.to_string()),
            q(self.hub.to_string()),
            q(self.hub_addr.clone()),
            match &self.portal {
                Some(p) => format!("portal = {}", q(p.clone())),
                None => "# portal = \"https://10.63.0.1:8443\"".to_owned(),
            },
            q(self.received.display().to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_file_round_trips_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        let paths = AgentPaths::new(dir.path());
        assert!(AgentConfig::load(&paths).unwrap_err().to_string().contains("gdx-agent enroll"));
        let c = AgentConfig {
            node: NodeId::parse("632522/gongan").unwrap(),
            hub: NodeId::parse("632500/hub").unwrap(),
            hub_addr: "10.0.0.1:7443".into(),
            portal: None,
            received: default_received(),
            at_rest_key: None,
            metrics: None,
            congestion: None,
            resources: vec![],
            items: vec![],
        };
        std::fs::write(paths.config(), c.to_commented_toml()).unwrap();
        assert_eq!(AgentConfig::load(&paths).unwrap(), c);
        std::fs::write(paths.config(), c.to_commented_toml() + "hubaddr = \"x\"\n").unwrap();
        assert!(AgentConfig::load(&paths).unwrap_err().to_string().contains("hubaddr"));
        std::fs::write(paths.config(), c.to_commented_toml().replace("632522/gongan", "632522/Gong")).unwrap();
        assert!(AgentConfig::load(&paths).unwrap_err().to_string().contains("lowercase"));
    }

    #[test]
    fn resources_parse_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let paths = AgentPaths::new(dir.path());
        let base = AgentConfig {
            node: NodeId::parse("632522/gongan").unwrap(),
            hub: NodeId::parse("632500/hub").unwrap(),
            hub_addr: "10.0.0.1:7443".into(),
            portal: None,
            received: default_received(),
            at_rest_key: None,
            metrics: None,
            congestion: None,
            resources: vec![],
            items: vec![],
        }
        .to_commented_toml();
        let good = base.clone()
            + "[[resource]]\ncode = \"hukou\"\nkey = [\"id\"]\nsource = { kind = \"sqlite\", path = \"/x.db\", table = \"people\" }\n"
            + "[[resource]]\ncode = \"dibao\"\nkey = [\"证件号码\"]\nschedule = \"1h\"\nsource = { kind = \"csv\", dir = \"/d\", encoding = \"gbk\" }\n";
        std::fs::write(paths.config(), &good).unwrap();
        let c = AgentConfig::load(&paths).unwrap();
        assert_eq!(c.resources.len(), 2);
        assert_eq!(c.resources[1].source, SourceConfig::Csv { dir: "/d".into(), encoding: Encoding::Gbk });
        assert_eq!(c.resources[0].schedule_secs(), Ok(900));
        // relative paths are the data directory's, whatever directory the agent runs in
        let relative = base.clone()
            + "[[resource]]\ncode = \"hukou\"\nkey = [\"id\"]\nsource = { kind = \"sqlite\", path = \"src/x.db\", table = \"people\" }\n"
            + "[[resource]]\ncode = \"dibao\"\nkey = [\"id\"]\nsource = { kind = \"csv\", dir = \"drop\" }\n"
            + "[[resource]]\ncode = \"jy\"\nkey = [\"id\"]\nsource = { kind = \"mysql\", host = \"h\", database = \"d\", user = \"u\", password_file = \"db.pw\", tls = \"verify\", ca_file = \"/etc/ca.pem\", table = \"t\" }\n";
        std::fs::write(paths.config(), &relative).unwrap();
        let c = AgentConfig::load(&paths).unwrap();
        assert_eq!(
            c.resources[0].source,
            SourceConfig::Sqlite { path: dir.path().join("src/x.db"), table: Some("people".into()), query: None }
        );
        assert_eq!(c.resources[1].source, SourceConfig::Csv { dir: dir.path().join("drop"), encoding: Encoding::Auto });
        let SourceConfig::Mysql(db) = &c.resources[2].source else { panic!("{:?}", c.resources[2].source) };
        assert_eq!(
            (db.password_file.as_deref(), db.ca_file.as_deref()),
            (Some(&*dir.path().join("db.pw")), Some(Path::new("/etc/ca.pem")))
        );
        for (bad, needle) in [
            ("code = \"a\"\nkey = []\nsource = { kind = \"csv\", dir = \"/d\" }", "key is empty"),
            ("code = \"a\"\nkey = [\"x y\"]\nsource = { kind = \"csv\", dir = \"/d\" }", "not a plain identifier"),
            ("code = \"a\"\nkey = [\"x\"]\nsource = { kind = \"sqlite\", path = \"/x\" }", "either table or query"),
            ("code = \"a\"\nkey = [\"x\"]\nsource = { kind = \"csv\", dir = \"/d\", encodng = \"gbk\" }", "encodng"),
            (
                "code = \"a\"\nkey = [\"x\"]\nschedule = \"soon\"\nsource = { kind = \"csv\", dir = \"/d\" }",
                "not a duration",
            ),
            ("code = \"a b\"\nkey = [\"x\"]\nsource = { kind = \"csv\", dir = \"/d\" }", "resource code"),
            (
                "code = \"a\"\nkey = [\"x\"]\nreconcile = \"1h\"\nsource = { kind = \"sqlite\", path = \"/x\", table = \"t\" }",
                "reconcile applies to a resource read by watermark",
            ),
            (
                "code = \"a\"\nkey = [\"x\"]\nchanged = \"at\"\nsource = { kind = \"csv\", dir = \"/d\" }",
                "a CSV drop is read whole",
            ),
            (
                "code = \"a\"\nkey = [\"x\"]\nsource = { kind = \"postgres\", host = \"h\", database = \"d\", user = \"u\", password_env = \"P\" }",
                "give exactly one of table or query",
            ),
        ] {
            std::fs::write(paths.config(), format!("{base}[[resource]]\n{bad}\n")).unwrap();
            let e = AgentConfig::load(&paths).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
