//! The rules of exactly once, whatever the engine keeping the vault (files
//! here, PostgreSQL in `crate::store::pg`): a new sync epoch from 1 replaces
//! the resource, a number applied before is a duplicate when its digest is
//! the same (and refused when not), a gap names the number expected, and a
//! resource's key never changes.

use gdx_common::data::{Changeset, Column};

use super::{Applied, VaultError};

/// What a vault holds of a resource: its columns and key (JSON), the last
/// number applied and the sync epoch.
pub(crate) type Head = (String, String, i64, i64);

/// What to do with a changeset, by the rules of exactly once, whatever the
/// engine.
pub(crate) struct Step {
    /// A new sync epoch from 1: the resource's rows and changesets go first.
    pub reset: bool,
    pub then: Then,
}

pub(crate) enum Then {
    /// Applied on top of the resource's table, which has `known` columns
    /// (None: it is made).
    Apply {
        known: Option<Vec<Column>>,
    },
    /// Its number was applied before: the same changeset, if the digest
    /// kept for it is its own ([`duplicate`]).
    Duplicate,
    Gap {
        expected: u64,
    },
}

/// Decides a changeset from the vault's `head` of its resource.
pub(crate) fn plan(head: Option<&Head>, cs: &Changeset) -> Result<Step, VaultError> {
    let table = cs.resource.as_str();
    let mut last = head.map_or(0, |h| h.2 as u64);
    let reset = head.is_some_and(|h| h.3 as u64 != cs.epoch);
    if reset {
        // The agent lost its sync state and starts over from 1 with a new
        // epoch, sending every row: the resource's contents are replaced.
        if cs.seq != 1 {
            return Err(VaultError::Schema(format!(
                "changeset {} of {table} comes from a new sync epoch but is not the first of it; the agent's state.db was replaced while changes were in flight",
                cs.seq
            )));
        }
        last = 0;
    }
    if cs.seq <= last {
        return Ok(Step { reset, then: Then::Duplicate });
    }
    if cs.seq != last + 1 {
        return Ok(Step { reset, then: Then::Gap { expected: last + 1 } });
    }
    // after a reset the table stays (emptied), with its columns and key
    let known = match head {
        None => None,
        Some((cols, key, _, _)) => {
            let key_names: Vec<String> = cs.key.iter().map(|&i| cs.columns[i].name.clone()).collect();
            let saved_key: Vec<String> = serde_json::from_str(key).unwrap_or_default();
            if saved_key != key_names {
                return Err(VaultError::Schema(format!(
                    "the key of {table} changed from {saved_key:?} to {key_names:?}; a resource's key cannot change"
                )));
            }
            Some(serde_json::from_str::<Vec<Column>>(cols).unwrap_or_default())
        }
    };
    Ok(Step { reset, then: Then::Apply { known } })
}

/// A number applied before: the same changeset again when `seen`, the
/// digest kept for it, is `digest`; a different one under a reused number
/// (an agent whose state.db was restored from an older copy) is refused.
pub(crate) fn duplicate(seen: Option<&[u8]>, digest: &[u8; 32], cs: &Changeset) -> Result<Applied, VaultError> {
    if seen.is_some_and(|d| d != digest.as_slice()) {
        let (seq, resource) = (cs.seq, cs.resource.as_str());
        return Err(VaultError::Schema(format!(
            "changeset {seq} of {resource} differs from the one applied before under that number: the agent's state.db was restored from an older copy. Run `gdx-agent sync --resource {resource} --accept-schema` on the agent, which sends the resource again in full"
        )));
    }
    Ok(Applied::Duplicate)
}

/// The audit event of an applied changeset, the same from either engine.
pub(crate) fn changeset_event(cs: &Changeset, digest: &[u8; 32], now: i64) -> gdx_common::audit::Event {
    gdx_common::audit::Event {
        kind: "changeset".into(),
        at: now,
        node: Some(cs.origin.to_string()),
        resource: Some(cs.resource.as_str().to_owned()),
        detail: serde_json::json!({
            "seq": cs.seq, "epoch": cs.epoch, "rows": cs.changes.len(),
            "sha256": gdx_common::token::hex(digest),
        }),
        ..Default::default()
    }
}
