//! What `bases.toml` declares: each base's key kind, members, fields with
//! their authority and fillers, and the catalogue entry it is shared under.

use std::collections::BTreeSet;
use std::path::Path;

use gdx_common::NodeId;
use gdx_common::catalog::{CatalogEntry, ValueKind};
use serde::Deserialize;

/// `bases.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasesConfig {
    #[serde(default, rename = "base")]
    pub bases: Vec<BaseConfig>,
}

/// One base database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    /// Its name: a plain identifier (`renkou`), its file `bases/NAME.db`.
    pub name: String,
    /// What people call it (人口基础信息库).
    pub title: String,
    /// The kind of its key (公民身份号码, 统一社会信用代码, …); keys that are
    /// not valid values of it are not merged. Absent: any key (a parcel
    /// code, say, for which no national check is built in).
    #[serde(default)]
    pub key: Option<ValueKind>,
    #[serde(rename = "member")]
    pub members: Vec<Member>,
    #[serde(rename = "field")]
    pub fields: Vec<Field>,
    /// What the key column is called where the base is shared (`key` when
    /// absent), such as `id_number`.
    #[serde(default)]
    pub key_column: Option<String>,
    /// The field holding each record's geometry, for a spatial base: WKT or
    /// GeoJSON in CGCS2000 (EPSG:4490), checked, measured (area, centroid,
    /// bounding box) and indexed for box queries.
    #[serde(default)]
    pub geometry: Option<String>,
    /// The reference system a spatial base declares; only `EPSG:4490`
    /// (CGCS2000) is kept.
    #[serde(default)]
    pub crs: Option<String>,
    /// The base's catalogue entry, when it is shared: the fields of a
    /// department's entry (docs/catalogue.md), provider and resource left
    /// out (this hub and the base's name); its 信息项 name `key_column` and
    /// the fields as their `column`.
    #[serde(default)]
    pub catalog: Option<toml::Table>,
}

/// A member resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub node: NodeId,
    pub resource: String,
    /// The column holding the base's key: the resource's key column.
    pub key: String,
    /// Whether consumers of the shared base are told this member gave a
    /// field (`FIELD__source`). Say `false` for a member whose holding of
    /// a person is itself sensitive (a welfare list, health records): the
    /// source then reads `another department`.
    #[serde(default = "disclosed")]
    pub disclose: bool,
}

fn disclosed() -> bool {
    true
}

/// A field of the base: its sources, `NODE/RESOURCE.column`, the first the
/// authority, the others filling in, in order, when it is silent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    pub from: Vec<String>,
}

/// A field's source, resolved: which member, which column.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub member: usize,
    pub column: String,
}

fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.starts_with("_gdx")
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

impl BasesConfig {
    /// Reads `bases.toml` in `hub_dir`; no file, no bases.
    pub fn load(hub_dir: &Path) -> Result<Self, String> {
        let path = hub_dir.join("bases.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let config: Self =
            toml::from_str(&text).map_err(|e| format!("{} is not valid: {}", path.display(), e.message()))?;
        for b in &config.bases {
            b.sources().map_err(|e| format!("{}: base {}: {e}", path.display(), b.name))?;
        }
        let mut names = BTreeSet::new();
        if let Some(b) = config.bases.iter().find(|b| !names.insert(&b.name)) {
            return Err(format!("{}: two bases are named {}", path.display(), b.name));
        }
        // a member's log of changed keys is read, then trimmed, by its one base
        let mut members = BTreeSet::new();
        if let Some((node, resource)) = config.members().into_iter().find(|m| !members.insert(m.clone())) {
            return Err(format!(
                "{}: {node}/{resource} is a member of two bases (or twice of one); a resource may feed one base",
                path.display()
            ));
        }
        Ok(config)
    }

    /// Every member resource of every base, for the vaults' log.
    pub fn members(&self) -> Vec<(NodeId, String)> {
        self.bases.iter().flat_map(|b| b.members.iter().map(|m| (m.node.clone(), m.resource.clone()))).collect()
    }
}

impl BaseConfig {
    /// The name of the key column where the base is shared.
    pub fn key_column(&self) -> &str {
        self.key_column.as_deref().unwrap_or("key")
    }

    /// The base's catalogue entry as provider `hub` publishes it, every
    /// rule checked; `Ok(None)` when it is not shared. `today`: days since 1970.
    pub fn entry(&self, hub: &NodeId, today: i64) -> Result<Option<CatalogEntry>, String> {
        let Some(table) = &self.catalog else { return Ok(None) };
        let what = format!("base {}: [base.catalog]", self.name);
        let mut table = table.clone();
        for key in ["provider", "resource"] {
            if table.contains_key(key) {
                return Err(format!("{what}: leave {key} out, it is filled in"));
            }
        }
        table.insert("provider".into(), toml::Value::String(hub.to_string()));
        table.insert("resource".into(), toml::Value::String(self.name.clone()));
        let entry: CatalogEntry = table.try_into().map_err(|e: toml::de::Error| format!("{what}: {}", e.message()))?;
        if let Err(errors) = entry.validate(today) {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(format!("{what} breaks the catalogue rules: {}", list.join("; ")));
        }
        let columns: BTreeSet<&str> =
            std::iter::once(self.key_column()).chain(self.fields.iter().map(|f| f.name.as_str())).collect();
        if let Some(item) = entry.items.iter().find(|i| !columns.contains(i.column())) {
            return Err(format!(
                "{what}: 信息项 {} names column {:?}, which the base does not have; use {} or a field's name",
                item.name,
                item.column(),
                self.key_column()
            ));
        }
        if !entry.items.iter().any(|i| i.column() == self.key_column()) {
            return Err(format!("{what}: declare the key as a 信息项 with column = {:?}", self.key_column()));
        }
        Ok(Some(entry))
    }

    /// Each field's sources, resolved, or what is wrong with the declaration.
    pub(super) fn sources(&self) -> Result<Vec<Vec<Source>>, String> {
        if !plain(&self.name) {
            return Err("the name must be a plain identifier such as renkou".into());
        }
        if self.members.is_empty() || self.fields.is_empty() {
            return Err("declare at least one [[base.member]] and one [[base.field]]".into());
        }
        if !plain(self.key_column()) || self.key_column().contains("__") {
            return Err("key_column must be a plain name without \"__\", such as id_number".into());
        }
        if let Some(g) = &self.geometry
            && !self.fields.iter().any(|f| &f.name == g)
        {
            return Err(format!("geometry = {g:?} names no [[base.field]]"));
        }
        match (&self.geometry, self.crs.as_deref()) {
            (Some(_), None | Some("EPSG:4490")) | (None, None) => {}
            (Some(_), Some(other)) => {
                return Err(format!(
                    "crs = {other:?}: a spatial base keeps CGCS2000 geographic coordinates, crs = \"EPSG:4490\"; transform the members' geometries at the source"
                ));
            }
            (None, Some(_)) => return Err("crs is declared but no geometry field; add geometry = \"FIELD\"".into()),
        }
        for m in &self.members {
            if !plain(&m.resource) || !plain(&m.key) {
                return Err(format!("member {}/{}: resource and key must be plain names", m.node, m.resource));
            }
        }
        self.fields
            .iter()
            .map(|f| {
                if !plain(&f.name) || f.name == "key" || f.name == self.key_column() || f.name.contains("__") {
                    return Err(format!(
                        "field {:?} must be a plain name without \"__\", other than key and the key column",
                        f.name
                    ));
                }
                if f.from.is_empty() {
                    return Err(format!("field {} names no source", f.name));
                }
                f.from
                    .iter()
                    .map(|s| {
                        let (member, column) = s.rsplit_once('.').ok_or_else(|| {
                            format!(
                                "field {}: source {s:?} must be NODE/RESOURCE.column, such as 630000/gongan/hukou.name",
                                f.name
                            )
                        })?;
                        let at = self
                            .members
                            .iter()
                            .position(|m| format!("{}/{}", m.node, m.resource) == member)
                            .ok_or_else(|| format!("field {}: {member} is not a [[base.member]]", f.name))?;
                        Ok(Source { member: at, column: column.to_owned() })
                    })
                    .collect()
            })
            .collect()
    }
}
