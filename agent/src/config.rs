//! `agent.toml`: the agent's configuration, and the files kept beside it.
//!
//! `gdx-agent enroll` writes the file with a comment on every key, and
//! writes it last: its presence means the enrolment completed. Unknown keys
//! are refused so that a typo is reported instead of silently ignored.

use std::path::{Path, PathBuf};

use gdx_common::NodeId;
use serde::{Deserialize, Serialize};

/// Default data directory of an agent.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/gdx-agent";

/// The contents of `agent.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This node's id, bound into its certificate at enrolment.
    pub node: NodeId,
    /// The node id of the hub this agent syncs with.
    pub hub: NodeId,
    /// `host:port` of the hub's QUIC endpoint.
    pub hub_addr: String,
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
        toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), message: e.message().to_owned() })
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
             # host:port of the hub's QUIC endpoint (UDP). Change it if the hub moves.\n\
             hub_addr = {}\n",
            q(self.node.to_string()),
            q(self.hub.to_string()),
            q(self.hub_addr.clone()),
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
        };
        std::fs::write(paths.config(), c.to_commented_toml()).unwrap();
        assert_eq!(AgentConfig::load(&paths).unwrap(), c);
        std::fs::write(paths.config(), c.to_commented_toml() + "hubaddr = \"x\"\n").unwrap();
        assert!(AgentConfig::load(&paths).unwrap_err().to_string().contains("hubaddr"));
        std::fs::write(paths.config(), c.to_commented_toml().replace("632522/gongan", "632522/Gong")).unwrap();
        assert!(AgentConfig::load(&paths).unwrap_err().to_string().contains("lowercase"));
    }
}
