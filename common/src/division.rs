//! Administrative division codes (GB/T 2260) and the hierarchy in their digits.
//!
//! A code is six digits: province `XX0000`, prefecture `XXYY00`, county
//! `XXYYZZ`. [`DivisionCode`] can only be built by [`DivisionCode::parse`],
//! which checks the shape and the province prefix, so the rest of the code
//! never re-checks. The Qinghai table from `data/qinghai-divisions.tsv` gives
//! names and tells current codes from retired ones.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Province prefixes that GB/T 2260 assigns (11–65, 71, 81, 82).
const PROVINCE_PREFIXES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82,
];

const QINGHAI_TABLE: &str = include_str!("../data/qinghai-divisions.tsv");

/// A well-formed six-digit administrative division code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DivisionCode(u32);

/// The level a division code names, read from its digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DivisionLevel {
    Province,
    Prefecture,
    County,
}

/// Why a string is not a division code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivisionError {
    /// Not exactly six ASCII digits.
    #[error("division code {0:?} must be exactly six digits, such as 632522")]
    Shape(String),
    /// The first two digits are not a province of GB/T 2260.
    #[error("division code {0} does not start with a province prefix of GB/T 2260 (11-65, 71, 81, 82)")]
    Province(String),
    /// A county part without a prefecture part (`XX00ZZ`).
    #[error("division code {0} has a county part but no prefecture part")]
    Hierarchy(String),
}

/// One row of the division table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    pub code: DivisionCode,
    pub name: String,
    /// `None` while current; the retirement note (e.g. `retired 2019 (now 630106)`) otherwise.
    pub retired: Option<String>,
}

impl DivisionCode {
    /// 青海省.
    pub const QINGHAI: DivisionCode = DivisionCode(630_000);

    /// The prefecture a county lies in (a prefecture or province: itself).
    pub fn prefecture(self) -> DivisionCode {
        if self.level() == DivisionLevel::County { Self(self.0 / 100 * 100) } else { self }
    }

    /// Parses a six-digit code, checking its shape and province prefix.
    pub fn parse(s: &str) -> Result<Self, DivisionError> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DivisionError::Shape(s.to_owned()));
        }
        let n: u32 = s.parse().map_err(|_| DivisionError::Shape(s.to_owned()))?;
        let province = (n / 10_000) as u8;
        if !PROVINCE_PREFIXES.contains(&province) {
            return Err(DivisionError::Province(s.to_owned()));
        }
        if (n / 100).is_multiple_of(100) && !n.is_multiple_of(100) {
            return Err(DivisionError::Hierarchy(s.to_owned()));
        }
        Ok(Self(n))
    }

    /// The level named by the digits.
    pub fn level(self) -> DivisionLevel {
        if self.0.is_multiple_of(10_000) {
            DivisionLevel::Province
        } else if self.0.is_multiple_of(100) {
            DivisionLevel::Prefecture
        } else {
            DivisionLevel::County
        }
    }

    /// True when `other` is this division or lies below it.
    pub fn contains(self, other: DivisionCode) -> bool {
        match self.level() {
            DivisionLevel::Province => self.0 / 10_000 == other.0 / 10_000,
            DivisionLevel::Prefecture => self.0 / 100 == other.0 / 100,
            DivisionLevel::County => self == other,
        }
    }

    /// True when `other` lies strictly below this division.
    pub fn strictly_contains(self, other: DivisionCode) -> bool {
        self != other && self.contains(other)
    }

    /// The division's row in the table, if the table knows it.
    pub fn lookup(self) -> Option<Division> {
        self.row().cloned()
    }

    /// The table's row of this code (the table is read once, then searched
    /// by code: every ID number checked looks its address code up).
    fn row(self) -> Option<&'static Division> {
        let by_code = table();
        by_code.binary_search_by_key(&self, |d| d.code).ok().map(|i| &by_code[i])
    }

    /// The Chinese name, or the code itself when the table does not know it.
    pub fn name(self) -> String {
        self.row().map(|d| d.name.clone()).unwrap_or_else(|| self.to_string())
    }

    /// True when the table lists this code as a current division.
    pub fn is_current(self) -> bool {
        self.row().is_some_and(|d| d.retired.is_none())
    }
}

/// Every division in the bundled table, in the table's order.
pub fn divisions() -> Vec<Division> {
    QINGHAI_TABLE
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let code = DivisionCode::parse(cols.first()?).ok()?;
            let status = cols.get(4).copied().unwrap_or("current");
            Some(Division {
                code,
                name: (*cols.get(1)?).to_owned(),
                retired: (status != "current").then(|| status.to_owned()),
            })
        })
        .collect()
}

/// The bundled table, read once, sorted by code (the first row of a code wins).
fn table() -> &'static [Division] {
    static TABLE: std::sync::OnceLock<Vec<Division>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut all = divisions();
        all.sort_by_key(|d| d.code);
        all.dedup_by_key(|d| d.code);
        all
    })
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DivisionCode({self})")
    }
}

impl FromStr for DivisionCode {
    type Err = DivisionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DivisionCode {
    type Error = DivisionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DivisionCode> for String {
    fn from(d: DivisionCode) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DivisionCode {
        DivisionCode::parse(s).unwrap()
    }

    #[test]
    fn parse_table() {
        for (input, ok) in [
            ("630000", true),
            ("632522", true),
            ("632500", true),
            ("63252", false),
            ("6325222", false),
            ("63252a", false),
            ("990000", false),
            ("100000", false),
            ("630012", false),
            ("", false),
            ("６３００００", false),
        ] {
            assert_eq!(DivisionCode::parse(input).is_ok(), ok, "{input}");
        }
    }

    #[test]
    fn levels_and_containment() {
        assert_eq!(d("630000").level(), DivisionLevel::Province);
        assert_eq!(d("632500").level(), DivisionLevel::Prefecture);
        assert_eq!(d("632522").level(), DivisionLevel::County);
        assert!(d("630000").contains(d("632522")));
        assert!(d("632500").contains(d("632522")));
        assert!(d("632500").contains(d("632500")));
        assert!(!d("632500").strictly_contains(d("632500")));
        assert!(!d("630100").contains(d("632522")));
        assert!(!d("632522").contains(d("632500")));
        assert!(!d("630000").contains(d("620000")));
        assert!(!d("632522").contains(d("632523")));
    }

    #[test]
    fn table_names_and_status() {
        assert_eq!(divisions().len(), 58);
        assert_eq!(d("632522").name(), "同德县");
        assert!(d("632522").is_current());
        assert!(!d("630122").is_current());
        assert!(d("630122").lookup().unwrap().retired.unwrap().contains("630106"));
        assert!(!d("632599").is_current());
        // every table row sits under its stated parent
        for div in divisions() {
            assert!(d("630000").contains(div.code), "{}", div.code);
        }
    }
}
