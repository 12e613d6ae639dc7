//! The province the demo builds, read from `departments.toml` (compiled in):
//! the prefecture hubs, the departments, the resources each publishes with
//! their catalogue entries, and how each column's sample values are made.

use serde::Deserialize;

/// All of `departments.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Province {
    /// The prefecture hubs the demo runs under the province.
    pub(super) prefectures: Vec<String>,
    #[serde(rename = "department")]
    pub(super) departments: Vec<Department>,
}

/// A department the demo enrols.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Department {
    pub(super) node: String,
    pub(super) name: String,
    /// The first 8 characters of its organisation code.
    pub(super) org: String,
    /// The database its tables live in (its CSV drops are files anyway).
    #[serde(default)]
    pub(super) engine: Engine,
    #[serde(rename = "resource")]
    pub(super) resources: Vec<Resource>,
}

/// A department's database engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Engine {
    #[default]
    Sqlite,
    Postgres,
    Mariadb,
}

/// A resource with its catalogue entry; the first column is the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resource {
    pub(super) code: String,
    pub(super) entry: String,
    pub(super) name: String,
    pub(super) class: String,
    pub(super) classification: Vec<String>,
    pub(super) summary: String,
    /// 共享类型, and for 有条件共享 and 不予共享 its condition and legal basis.
    pub(super) sharing: String,
    pub(super) condition: Option<String>,
    pub(super) legal_basis: Option<String>,
    pub(super) method: String,
    pub(super) cycle: String,
    pub(super) open: bool,
    pub(super) related: Vec<String>,
    pub(super) rows: usize,
    pub(super) columns: Vec<Col>,
}

/// A column: source name, 信息项名称, 数据类型, 数据长度, how to make values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Col {
    pub(super) column: String,
    pub(super) item: String,
    #[serde(rename = "type")]
    pub(super) data_type: String,
    pub(super) length: u32,
    pub(super) values: Gen,
}

/// How a column's sample values are made.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Gen {
    IdNumber,
    PersonName,
    Gender,
    Minzu,
    Birth,
    County,
    CreditCode,
    Company,
    Date,
    Money(u32, u32),
    Int(u32, u32),
    Pick(Vec<String>),
    Serial(String),
    /// A parcel's boundary near `[lon, lat]`: a turned rectangle, WKT in CGCS2000.
    Parcel(f64, f64),
    /// The registered area (m²) of the same row's parcel.
    ParcelArea(f64, f64),
    /// A 统一社会信用代码 of another registering office (`"51"`: 民政's
    /// social organisations, `"12"`: 编办's public institutions).
    CreditCodeOf(String),
    /// An organisation's name: a county, a word, and one of these endings.
    OrgName(Vec<String>),
}

impl Province {
    /// The province of `departments.toml`.
    pub(super) fn load() -> anyhow::Result<Self> {
        toml::from_str(include_str!("departments.toml"))
            .map_err(|e| anyhow::anyhow!("the demo's departments.toml does not parse: {e}"))
    }

    pub(super) fn resource_count(&self) -> usize {
        self.departments.iter().map(|d| d.resources.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_province_parses_and_holds_the_five_base_resources() {
        let p = Province::load().unwrap();
        assert_eq!(p.prefectures, ["630100", "632500"]);
        assert_eq!(p.departments.len(), 20);
        let base = p.departments.iter().flat_map(|d| &d.resources).filter(|r| r.class == "基础信息资源").count();
        assert!(base >= 5, "{base}");
        assert!(p.departments.iter().flat_map(|d| &d.resources).all(|r| !r.columns.is_empty()));
        // a 信息资源代码 names one resource in the province
        let mut codes: Vec<&str> = p.departments.iter().flat_map(|d| &d.resources).map(|r| r.entry.as_str()).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), before, "two resources share an entry code");
    }
}
