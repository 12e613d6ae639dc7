//! What `supervision.toml` declares: the registration resource whose new
//! enterprises and scope changes bring 双告知 notices, the matters needing
//! a later licence and who licenses them, the dishonest lists and the
//! measures per matter (联合惩戒). A hub without the file does neither.

use std::path::Path;

use gdx_common::NodeId;
use gdx_common::discipline::{List, Measure, Table};
use gdx_common::notice::{Matter, Rules};
use serde::Deserialize;

use crate::store::HubPaths;

/// The registration resource (市场监管's 企业登记) and its columns.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The department that keeps it, `630000/scjg`.
    pub provider: NodeId,
    /// Its resource name in the department's agent.toml.
    pub resource: String,
    /// The columns of the credit code, the enterprise's name, its business scope.
    pub credit_code: String,
    pub name: String,
    pub scope: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    registration: Option<Registration>,
    #[serde(default)]
    matter: Vec<Matter>,
    #[serde(default)]
    list: Vec<List>,
    #[serde(default)]
    measure: Vec<Measure>,
}

/// `supervision.toml`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisionConfig {
    pub registration: Option<Registration>,
    pub rules: Rules,
    pub table: Table,
}

impl SupervisionConfig {
    /// Reads the hub's `supervision.toml` (none: nothing to do); the error
    /// names the file and the entry at fault.
    pub fn load(hub_dir: &Path) -> Result<Self, String> {
        let path = HubPaths::new(hub_dir).supervision_toml();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let f: File = toml::from_str(text).map_err(|e| format!("not valid: {}", e.message()))?;
        let config = Self {
            registration: f.registration,
            rules: Rules { matters: f.matter },
            table: Table { lists: f.list, measures: f.measure },
        };
        config.rules.check()?;
        config.table.check()?;
        if let Some(r) = &config.registration {
            if r.provider.org() == "hub" {
                return Err("[registration] provider must be a department, such as 630000/scjg".into());
            }
            if config.rules.matters.is_empty() {
                return Err("[registration] is set but no [[matter]] says which scopes need a later licence".into());
            }
        }
        Ok(config)
    }

    /// The file's modification time, to reload it when the operator edits it.
    pub fn modified(hub_dir: &Path) -> Option<std::time::SystemTime> {
        std::fs::metadata(HubPaths::new(hub_dir).supervision_toml()).and_then(|m| m.modified()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_rules_parse_and_mistakes_name_the_entry() {
        const DEMO: &str = include_str!("../demo/supervision.toml");
        let c = SupervisionConfig::parse(DEMO).unwrap();
        assert!(c.registration.is_some());
        assert!(!c.rules.matters.is_empty() && !c.table.lists.is_empty() && !c.table.measures.is_empty());
        let bad = DEMO.replacen("provider = \"630000/scjg\"", "provider = \"630000/hub\"", 1);
        assert!(SupervisionConfig::parse(&bad).unwrap_err().contains("must be a department"));
        assert!(SupervisionConfig::parse("[[list]]\nname = \"x\"").unwrap_err().contains("missing field"));
        assert_eq!(SupervisionConfig::parse("").unwrap(), SupervisionConfig::default());
    }
}
