//! `hub.toml`: the hub's configuration, and the files kept beside it.
//!
//! `gdx-hub init` writes the file with a comment on every key; the struct's
//! doc comments say the same. Unknown keys are refused so that a typo is
//! reported instead of silently ignored.

use crate::store::HubPaths;
use gdx_common::{DivisionCode, NodeId};
use serde::{Deserialize, Serialize};

/// Default data directory of a hub.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/gdx-hub";
/// Default QUIC address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7443";
/// Default HTTPS address.
pub const DEFAULT_HTTP: &str = "0.0.0.0:8443";

/// The contents of `hub.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// The administrative division this hub serves (GB/T 2260); it accepts
    /// nodes of this division and below.
    pub division: DivisionCode,
    /// The platform's display name.
    pub name: String,
    /// UDP address of the QUIC endpoint that agents and child hubs dial.
    pub listen: String,
    /// `host:port` that nodes use to reach this hub, or several separated
    /// by commas (one per process of the hub); written into tokens.
    pub advertise: String,
    /// TCP address of the HTTPS portal and API.
    pub http: String,
    /// Days of validity of the node certificates this hub issues.
    pub cert_days: i64,
    /// QUIC's congestion control, `"bbr"` (absent) or `"cubic"`
    /// (`gdx_certs::tls::Congestion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub congestion: Option<String>,
    /// The parent hub of a child (prefecture) hub; absent at the province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<NodeId>,
    /// `host:port` of the parent hub's QUIC endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_addr: Option<String>,
    /// Lookups a consumer may make under one grant each minute at this hub;
    /// more are refused, and the refusal is in the audit log.
    #[serde(default = "default_lookups_per_minute")]
    pub lookups_per_minute: u32,
    /// A file holding the key (64 hex digits, 0600) under which the vaults,
    /// the base databases and exchange.db are kept encrypted; absent, they
    /// are plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_rest_key: Option<std::path::PathBuf>,
    /// `IP:PORT` where Prometheus scrapes `GET /metrics` (plain HTTP, no
    /// login: keep it on a loopback or management address); absent, none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// Where the vaults are kept: SQLite files in the data directory
    /// (absent, or `kind = "sqlite"`), or a PostgreSQL database
    /// ([`StoreConfig::Postgres`], docs/operator.md "Vaults on PostgreSQL").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreConfig>,
}

/// The engine of the hub's vaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// SQLite files in the data directory, the default.
    Sqlite,
    /// A PostgreSQL database: each department's vault a schema of its own,
    /// owned by a role of its own.
    Postgres {
        /// A file (0600) holding the connection URL,
        /// `postgresql://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require`.
        url_file: std::path::PathBuf,
        /// The CA certificate (PEM) the server's certificate must chain
        /// to; absent, the connection is encrypted but the server not
        /// authenticated (`sslmode=require`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<std::path::PathBuf>,
    },
}

/// Where hub.toml in `paths` keeps the hub's stores, read alone (the stores
/// open it for that line only; the rest is checked, and acted on, by
/// [`HubConfig::load`] when a command starts). None without hub.toml
/// (during `init`) or without the line.
pub fn store_in(paths: &HubPaths) -> Result<Option<StoreConfig>, ConfigError> {
    #[derive(Deserialize)]
    struct StoreLine {
        store: Option<StoreConfig>,
    }
    let path = paths.config();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
    };
    let line: StoreLine = toml::from_str(&text)
        .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), message: e.message().to_owned() })?;
    Ok(line.store)
}

impl HubConfig {
    /// The PostgreSQL store, if the vaults are kept there.
    pub fn postgres(&self) -> Option<&StoreConfig> {
        self.store.as_ref().filter(|s| matches!(s, StoreConfig::Postgres { .. }))
    }
}

/// Lookups per grant and minute unless hub.toml says otherwise.
pub const DEFAULT_LOOKUPS_PER_MINUTE: u32 = 600;

fn default_lookups_per_minute() -> u32 {
    DEFAULT_LOOKUPS_PER_MINUTE
}

/// Failures reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No hub.toml in the data directory.
    #[error("{0} holds no GDX hub (hub.toml is missing); run `gdx-hub init` first or pass the right --data directory")]
    Missing(String),
    /// hub.toml cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// hub.toml is not valid.
    #[error("{path} is not a valid hub configuration: {message}")]
    Invalid { path: String, message: String },
    /// The directory was written by a newer gdx-hub.
    #[error("{0}")]
    Newer(String),
}

impl HubConfig {
    /// Loads `hub.toml` from the data directory.
    pub fn load(paths: &HubPaths) -> Result<Self, ConfigError> {
        let path = paths.config();
        // a directory a newer gdx-hub wrote is not read at all
        crate::store::format::check(&paths.dir).map_err(ConfigError::Newer)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing(paths.dir.display().to_string()));
            }
            Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
        };
        let config: HubConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), message: e.message().to_owned() })?;
        if config.postgres().is_some() {
            // what reads the vaults as files is not yet on PostgreSQL (docs/operator.md)
            let refused = if config.parent.is_some() {
                Some("a prefecture hub keeps its vaults in SQLite for now (it forwards from the vault files)")
            } else if config.at_rest_key.is_some() {
                Some("at_rest_key encrypts SQLite files; on PostgreSQL, encrypt the database's disk instead")
            } else {
                None
            };
            if let Some(why) = refused {
                return Err(ConfigError::Invalid {
                    path: path.display().to_string(),
                    message: format!(
                        "store = {{ kind = \"postgres\", … }} cannot be used here: {why}; remove the store line"
                    ),
                });
            }
        }
        if let Some(key) = &config.at_rest_key {
            // a relative path is the data directory's, as the other files' are
            let key = gdx_files::at_rest::AtRestKey::load(&paths.dir.join(key))
                .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), message: e.to_string() })?;
            gdx_files::at_rest::encrypt_under(&paths.vaults(), key.clone());
            gdx_files::at_rest::encrypt_under(&paths.bases(), key.clone());
            gdx_files::at_rest::encrypt_under(&paths.exchange_db(), key);
        }
        if let Some(name) = &config.congestion {
            let c = gdx_certs::tls::Congestion::parse(name)
                .map_err(|message| ConfigError::Invalid { path: path.display().to_string(), message })?;
            gdx_certs::tls::use_congestion(c);
        }
        if config.lookups_per_minute == 0 {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                message: "lookups_per_minute = 0 would refuse every lookup; give a positive number (600 by default)"
                    .into(),
            });
        }
        if config.cert_days <= 0 {
            return Err(ConfigError::Invalid {
                path: path.display().to_string(),
                message: "cert_days must be a positive number of days".into(),
            });
        }
        Ok(config)
    }

    /// This hub's node id, `DIVISION/hub`.
    pub fn hub_id(&self) -> NodeId {
        NodeId::hub(self.division)
    }

    /// The file text, with a comment on every key.
    pub fn to_commented_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        format!(
            "# GDX hub configuration, written by `gdx-hub init`.\n\
             # Restart `gdx-hub run` after editing. Keys not listed here are refused.\n\
             \n\
             # The administrative division this hub serves (GB/T 2260 code). The hub\n\
             # accepts agents of this division and below, and child hubs strictly below.\n\
             # Fixed at init: the CA certificate is bound to it.\n\
             division = {}\n\
             \n\
             # The platform's display name, shown in the portal and to enrolling nodes.\n\
             name = {}\n\
             \n\
             # UDP address of the QUIC endpoint that agents and child hubs dial (port 7443 by convention).\n\
             listen = {}\n\
             \n\
             # host:port that nodes use to reach this hub. It is written into every\n\
             # enrolment token, so it must be reachable from the counties. A hub run\n\
             # as two processes on two machines (stores on PostgreSQL) lists both,\n\
             # separated by commas: nodes dial the next when one fails.\n\
             advertise = {}\n\
             \n\
             # TCP address of the HTTPS portal and API (port 8443 by convention).\n\
             http = {}\n\
             \n\
             # Days of validity of the node certificates this hub issues.\n\
             cert_days = {}\n\
             \n\
             # Lookups a consumer may make under one grant each minute at this hub;\n\
             # more are refused, and each minute's first refusal is in the audit log.\n\
             lookups_per_minute = {}\n\
             \n\
             # Keep the vaults and exchange.db encrypted at rest (SQLCipher) under the key\n\
             # in this file: 64 hex digits, mode 0600, kept apart from this directory\n\
             # (`openssl rand -hex 32 > /etc/gdx/hub-at-rest.key`). Plain stores are\n\
             # encrypted when the hub next opens them. Losing the key loses the data.\n\
             {}\n\
             \n\
             # IP:PORT where Prometheus scrapes GET /metrics (plain HTTP, no login:\n\
             # keep it on a loopback or management address; packaging/prometheus/).\n\
             {}\n\
             \n\
             # QUIC's congestion control: \"bbr\" (the default) fills a lossy satellite\n\
             # link; \"cubic\" is gentler on a link shared with other traffic.\n\
             {}\n\
             \n\
             # Where the vaults are kept: SQLite files here (the default), or a PostgreSQL\n\
             # database whose URL is in url_file (0600), each department a schema and a\n\
             # role of its own (docs/operator.md, \"Vaults on PostgreSQL\").\n\
             {}\n{}",
            q(&self.division.to_string()),
            q(&self.name),
            q(&self.listen),
            q(&self.advertise),
            q(&self.http),
            self.cert_days,
            self.lookups_per_minute,
            match &self.at_rest_key {
                Some(k) => format!("at_rest_key = {}", q(&k.display().to_string())),
                None => "# at_rest_key = \"/etc/gdx/hub-at-rest.key\"".to_owned(),
            },
            match &self.metrics {
                Some(m) => format!("metrics = {}", q(m)),
                None => "# metrics = \"127.0.0.1:9464\"".to_owned(),
            },
            match &self.congestion {
                Some(c) => format!("congestion = {}", q(c)),
                None => "# congestion = \"cubic\"".to_owned(),
            },
            match &self.store {
                Some(StoreConfig::Sqlite) => "store = { kind = \"sqlite\" }".to_owned(),
                Some(StoreConfig::Postgres { url_file, ca_file }) => format!(
                    "store = {{ kind = \"postgres\", url_file = {}{} }}",
                    q(&url_file.display().to_string()),
                    ca_file
                        .as_ref()
                        .map(|c| format!(", ca_file = {}", q(&c.display().to_string())))
                        .unwrap_or_default()
                ),
                None => "# store = { kind = \"postgres\", url_file = \"/etc/gdx/hub-db.url\" }".to_owned(),
            },
            match (&self.parent, &self.parent_addr) {
                (Some(p), Some(a)) => format!(
                    "\n# The parent hub this hub joined, and the host:port of its QUIC endpoint.\n\
                     # This hub keeps one connection to it and forwards what the parent must hold.\n\
                     parent = {}\n\
                     \n\
                     # Change it if the parent hub moves.\n\
                     parent_addr = {}\n",
                    q(&p.to_string()),
                    q(a)
                ),
                _ => String::new(),
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HubConfig {
        HubConfig {
            division: DivisionCode::parse("630000").unwrap(),
            name: "青海省政务数据共享交换平台 \"test\"".into(),
            listen: "0.0.0.0:7443".into(),
            advertise: "hub.qh.gov.cn:7443".into(),
            http: "0.0.0.0:8443".into(),
            cert_days: 730,
            parent: None,
            parent_addr: None,
            lookups_per_minute: crate::config::DEFAULT_LOOKUPS_PER_MINUTE,
            at_rest_key: None,
            metrics: None,
            congestion: None,
            store: None,
        }
    }

    #[test]
    fn commented_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HubPaths::new(dir.path());
        let text = sample().to_commented_toml();
        // every key has a comment right above it
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(" = ") {
                assert!(lines[i - 1].starts_with('#'), "{line}");
            }
        }
        std::fs::write(paths.config(), text).unwrap();
        assert_eq!(HubConfig::load(&paths).unwrap(), sample());
        let on_postgres = HubConfig {
            store: Some(StoreConfig::Postgres {
                url_file: "/etc/gdx/hub-db.url".into(),
                ca_file: Some("/etc/gdx/db-ca.pem".into()),
            }),
            ..sample()
        };
        std::fs::write(paths.config(), on_postgres.to_commented_toml()).unwrap();
        assert_eq!(HubConfig::load(&paths).unwrap(), on_postgres);
        // what cannot run on PostgreSQL yet is refused, saying why
        let encrypted = HubConfig { at_rest_key: Some("/etc/gdx/k".into()), ..on_postgres };
        std::fs::write(paths.config(), encrypted.to_commented_toml()).unwrap();
        let e = HubConfig::load(&paths).unwrap_err().to_string();
        assert!(e.contains("encrypt the database's disk instead"), "{e}");
    }

    #[test]
    fn unknown_keys_and_missing_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HubPaths::new(dir.path());
        assert!(HubConfig::load(&paths).unwrap_err().to_string().contains("gdx-hub init"));
        std::fs::write(paths.config(), sample().to_commented_toml() + "lisen = \"x\"\n").unwrap();
        let e = HubConfig::load(&paths).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        let none = HubConfig { lookups_per_minute: 0, ..sample() };
        std::fs::write(paths.config(), none.to_commented_toml()).unwrap();
        let e = HubConfig::load(&paths).unwrap_err().to_string();
        assert!(e.contains("lookups_per_minute = 0 would refuse every lookup"), "{e}");
    }

    /// at_rest_key's relative path is the data directory's, wherever the
    /// command runs; a key file missing is named, and stops a command that
    /// reads the vaults rather than letting it find none.
    #[test]
    fn the_at_rest_key_is_read_from_the_data_directory_and_named_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HubPaths::new(dir.path());
        let keyed = HubConfig { at_rest_key: Some("hub-at-rest.key".into()), ..sample() };
        std::fs::write(paths.config(), keyed.to_commented_toml()).unwrap();
        let e = HubConfig::load(&paths).unwrap_err().to_string();
        let file = dir.path().join("hub-at-rest.key").display().to_string();
        assert!(e.contains(&format!("the at-rest key file {file} does not exist")), "{e}");
        let e = crate::store::vault::Vaults::at(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(&file), "{e}");
        gdx_files::write_new(&dir.path().join("hub-at-rest.key"), "ab".repeat(32).as_bytes(), true).unwrap();
        assert_eq!(HubConfig::load(&paths).unwrap(), keyed);
        assert!(crate::store::vault::Vaults::at(dir.path()).is_ok());
    }
}
