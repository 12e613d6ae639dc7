//! Node identities: `DIVISION/ORG` ids and the role a certificate grants.
//!
//! A hub's id is `DIVISION/hub`. ORG is lowercase ASCII letters, digits and
//! `-`, 1 to 32 characters, not starting or ending with `-`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::division::{DivisionCode, DivisionError};

/// Longest ORG part accepted.
pub const MAX_ORG_LEN: usize = 32;

/// A node's identity, such as `632522/gongan` or `630000/hub`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId {
    division: DivisionCode,
    org: String,
}

/// What a certificate lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A department's agent, next to its database.
    Agent,
    /// A province or prefecture hub.
    Hub,
}

/// Why a string is not a node id or a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// No `/` between division and org.
    #[error("node id {0:?} must look like DIVISION/ORG, such as 632522/gongan")]
    Shape(String),
    /// The division part is not a division code.
    #[error("node id {id:?}: {source}")]
    Division {
        id: String,
        #[source]
        source: DivisionError,
    },
    /// The org part has characters other than a-z, 0-9 and `-`, or a bad length.
    #[error(
        "node id {0:?}: the part after / must be 1-32 lowercase letters, digits or '-', not starting or ending with '-'"
    )]
    Org(String),
    /// Not `agent` or `hub`.
    #[error("role {0:?} is not known: use agent or hub")]
    Role(String),
}

impl NodeId {
    /// Parses `DIVISION/ORG`.
    pub fn parse(s: &str) -> Result<Self, NodeIdError> {
        let (div, org) = s.split_once('/').ok_or_else(|| NodeIdError::Shape(s.to_owned()))?;
        let division = DivisionCode::parse(div).map_err(|source| NodeIdError::Division { id: s.to_owned(), source })?;
        let org_ok = !org.is_empty()
            && org.len() <= MAX_ORG_LEN
            && org.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !org.starts_with('-')
            && !org.ends_with('-');
        if !org_ok {
            return Err(NodeIdError::Org(s.to_owned()));
        }
        Ok(Self { division, org: org.to_owned() })
    }

    /// The id of the hub of `division`.
    pub fn hub(division: DivisionCode) -> Self {
        Self { division, org: "hub".to_owned() }
    }

    pub fn division(&self) -> DivisionCode {
        self.division
    }

    pub fn org(&self) -> &str {
        &self.org
    }

    /// True for `DIVISION/hub`.
    pub fn is_hub_id(&self) -> bool {
        self.org == "hub"
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Hub => "hub",
        }
    }
}

impl FromStr for Role {
    type Err = NodeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "hub" => Ok(Role::Hub),
            other => Err(NodeIdError::Role(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.division, self.org)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = NodeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for NodeId {
    type Error = NodeIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<NodeId> for String {
    fn from(n: NodeId) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        for (input, ok) in [
            ("632522/gongan", true),
            ("630000/hub", true),
            ("630102/wei-jian-2", true),
            ("632522", false),
            ("632522/", false),
            ("632522/GongAn", false),
            ("632522/gong an", false),
            ("632522/-x", false),
            ("632522/x-", false),
            ("632522/公安", false),
            ("63252/gongan", false),
            ("632522/gongan/x", false),
            ("632522/abcdefghijabcdefghijabcdefghijabc", false),
        ] {
            assert_eq!(NodeId::parse(input).is_ok(), ok, "{input}");
        }
    }

    #[test]
    fn round_trip_and_parts() {
        let n = NodeId::parse("632522/gongan").unwrap();
        assert_eq!(n.to_string(), "632522/gongan");
        assert_eq!(n.division().to_string(), "632522");
        assert_eq!(n.org(), "gongan");
        assert!(NodeId::hub(n.division()).is_hub_id());
        assert_eq!("hub".parse::<Role>().unwrap(), Role::Hub);
        assert!("admin".parse::<Role>().unwrap_err().to_string().contains("agent or hub"));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = NodeId::parse("632522/GongAn").unwrap_err().to_string();
        assert!(e.contains("lowercase"), "{e}");
        let e = NodeId::parse("99/x").unwrap_err().to_string();
        assert!(e.contains("six digits"), "{e}");
    }
}
