//! Schema merging: a resource keeps its saved column order and takes new
//! columns at the end; a column gone or changed in type is drift.

use super::Column;

/// Why a source's columns no longer fit a resource's saved schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaDrift {
    #[error("column {column:?} is no longer in the source (dropped or renamed; the source now has {})", .now.join(", "))]
    Gone { column: String, now: Vec<String> },
    #[error("column {column:?} changed type from {from:?} to {to:?}")]
    Retyped { column: String, from: String, to: String },
}

/// Merges a resource's saved schema with its source's columns: the saved
/// order first, new columns appended (they flow through). A saved column
/// that is gone or whose declared type changed is drift. No saved schema:
/// the source's.
pub fn merge_schema(saved: Option<&[Column]>, source: &[Column]) -> Result<Vec<Column>, SchemaDrift> {
    let Some(saved) = saved.filter(|s| !s.is_empty()) else { return Ok(source.to_vec()) };
    for c in saved {
        match source.iter().find(|s| s.name == c.name) {
            None => {
                let now = source.iter().map(|c| c.name.clone()).collect();
                return Err(SchemaDrift::Gone { column: c.name.clone(), now });
            }
            Some(s) if s.decl_type != c.decl_type => {
                return Err(SchemaDrift::Retyped {
                    column: c.name.clone(),
                    from: c.decl_type.clone(),
                    to: s.decl_type.clone(),
                });
            }
            Some(_) => {}
        }
    }
    let mut out = saved.to_vec();
    out.extend(source.iter().filter(|s| !saved.iter().any(|c| c.name == s.name)).cloned());
    Ok(out)
}
