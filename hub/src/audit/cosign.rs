//! The parent's side of cosigning a child hub's checkpoints, the child's
//! request and keeping of cosignatures, and the evidence of checkpoints that
//! cannot both be true.
//!
//! The parent signs [`cosignature_note`] of format [`COSIGNATURE_VERSION`]:
//! its own id followed by the child's checkpoint text, so that the
//! cosigner's id in a bundle cannot be edited. The child keeps a
//! cosignature only if it verifies over a checkpoint it signed (in format 2,
//! or format 1 from a parent that predates it) and is under the same key as
//! every cosignature kept before: its bundles then verify offline.

use super::*;

/// Why a parent hub refuses to cosign a child hub's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CosignRefused {
    #[error("checkpoint {size} of {origin} is not signed by the key it names")]
    Unsigned { size: u64, origin: String },
    #[error("checkpoint {size} of {origin} is older than the newest cosigned ({newest})")]
    Older { size: u64, origin: String, newest: u64 },
    /// Two checkpoints that cannot both be true: the evidence is kept.
    #[error("checkpoint {size} of {origin} refused: {what}; the evidence is kept in the parent's audit log")]
    Conflict { size: u64, origin: String, what: &'static str },
}

/// Why a child hub does not keep a cosignature its parent sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureRefused {
    #[error(
        "the parent hub sent a cosignature of a checkpoint of size {size}, which this hub never signed; it was not kept"
    )]
    NeverSigned { size: u64 },
    #[error("the parent hub's cosignature of checkpoint {size} names a key that is not 32 bytes; it was not kept")]
    KeyLength { size: u64 },
    #[error(
        "the parent hub's cosignature of checkpoint {size} does not verify under the key {key} it names; it was not kept"
    )]
    DoesNotVerify { size: u64, key: String },
    #[error(
        "the parent hub cosigned checkpoint {size} under key {key}, but the cosignatures kept before are under key {other}; a parent hub has one audit key, so it was not kept"
    )]
    OtherKey { size: u64, key: String, other: String },
}

impl AuditLog {
    /// The parent's side of cosigning: checks a checkpoint of child hub
    /// `origin` (signature, and consistency with the last one cosigned for
    /// it), then cosigns it and records that in this log, in one
    /// transaction. Two checkpoints that cannot both be true are kept as
    /// evidence, logged as `equivocation`, and refused.
    pub fn cosign(
        &mut self,
        origin: &str,
        req: &gdx_common::wire::CosignRequest,
        now: i64,
    ) -> Result<Result<gdx_common::wire::Message, CosignRefused>, AuditError> {
        use gdx_common::wire::{Cosignature, Message};
        let root = hex(&req.root);
        let note = Checkpoint::note(origin, req.size, &root, req.at);
        if UnparsedPublicKey::new(&ED25519, &req.public_key).verify(note.as_bytes(), &req.signature).is_err() {
            return Ok(Err(CosignRefused::Unsigned { size: req.size, origin: origin.to_owned() }));
        }
        let received = serde_json::json!({ "size": req.size, "root": root, "at": req.at,
            "public_key": hex(&req.public_key), "signature": hex(&req.signature),
            "from_size": req.from_size, "proof": req.proof.iter().map(|p| hex(p)).collect::<Vec<_>>() });
        let event = |kind: &str, detail: serde_json::Value| Event {
            kind: kind.into(),
            at: now,
            node: Some(origin.to_owned()),
            detail,
            ..Event::default()
        };
        let me = gdx_common::NodeId::parse(&self.origin).map_err(|e| AuditError::Other(e.to_string()))?;
        let mut tree = self.tree.clone();
        let answer = self.db.write(|tx| -> Result<Result<Message, CosignRefused>, AuditError> {
            catch_up(tx, &mut tree)?;
            // what was cosigned before, read in the transaction that records the answer
            let last: Option<(i64, String, String)> = tx.query_opt(
                "SELECT size, root, public_key FROM cosigned WHERE origin = ?1 ORDER BY size DESC LIMIT 1",
                args![origin],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let same: Option<String> = tx.query_opt(
                "SELECT root FROM cosigned WHERE origin = ?1 AND size = ?2",
                args![origin, req.size as i64],
                |r| r.get(0),
            )?;
            let conflict = |what: &'static str, held: serde_json::Value| (what, held);
            let problem = match (&last, &same) {
                (Some((_, _, key)), _) if *key != hex(&req.public_key) => {
                    Some(conflict("its audit key changed", serde_json::json!({ "public_key": key })))
                }
                (_, Some(r)) if *r != root => Some(conflict(
                    "two different roots for the same size",
                    serde_json::json!({ "size": req.size, "root": r }),
                )),
                (_, Some(_)) => None,
                (Some((size0, _, _)), None) if req.size < *size0 as u64 => {
                    return Ok(Err(CosignRefused::Older {
                        size: req.size,
                        origin: origin.to_owned(),
                        newest: *size0 as u64,
                    }));
                }
                (Some((size0, _, _)), None) if req.from_size != *size0 as u64 => {
                    return Ok(Ok(Message::CosignFrom(*size0 as u64)));
                }
                (Some((size0, root0, _)), None) => {
                    let proof: Vec<Hash> = req.proof.iter().filter_map(|p| p.clone().try_into().ok()).collect();
                    let ok = proof.len() == req.proof.len()
                        && hash_of(root0).zip(req.root.clone().try_into().ok()).is_some_and(|(r0, r1): (Hash, Hash)| {
                            merkle::verify_consistency(*size0 as u64, req.size, &proof, &r0, &r1)
                        });
                    (!ok).then(|| {
                        conflict(
                            "the new checkpoint does not extend the last one cosigned",
                            serde_json::json!({ "size": size0, "root": root0 }),
                        )
                    })
                }
                (None, None) => None,
            };
            if let Some((what, held)) = problem {
                let refused = CosignRefused::Conflict { size: req.size, origin: origin.to_owned(), what };
                let kept: Vec<String> =
                    tx.query("SELECT received FROM evidence WHERE origin = ?1", args![origin], |r| r.get(0))?;
                let known = kept.iter().any(|k| {
                    serde_json::from_str::<serde_json::Value>(k)
                        .is_ok_and(|k| k["size"] == req.size && k["root"] == root.as_str())
                });
                // the same conflict with what was cosigned (a child restored from a backup, whose every
                // new checkpoint forks from the same one): kept once, not once a checkpoint
                let same_conflict: bool = tx
                    .query_opt(
                        "SELECT 1 FROM evidence WHERE origin = ?1 AND what = ?2 AND held = ?3",
                        args![origin, what, held.to_string()],
                        |_| Ok(()),
                    )?
                    .is_some();
                if known || same_conflict {
                    // kept already: a child that keeps sending it is not logged again
                    return Ok(Err(refused));
                }
                let id: i64 = tx.query_row(
                    "INSERT INTO evidence (origin, at, what, held, received) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    args![origin, now, what, held.to_string(), received.to_string()],
                    |r| r.get(0),
                )?;
                let detail = serde_json::json!({ "what": what, "held": held, "received": received });
                Self::append_in(tx, &mut tree, &format!("evidence#{id}"), &event("equivocation", detail))?;
                return Ok(Err(refused));
            }
            let cosigned = cosignature_note(COSIGNATURE_VERSION, &me.to_string(), &note)
                .ok_or_else(|| AuditError::Other("this build has no text for its own cosignature format".into()))?;
            let signature = self.key.sign(cosigned.as_bytes()).as_ref().to_vec();
            if same.is_none() {
                tx.execute(
                    "INSERT INTO cosigned (origin, size, root, at, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    args![origin, req.size as i64, root, req.at, hex(&req.public_key), hex(&req.signature)],
                )?;
                let detail = serde_json::json!({ "size": req.size, "root": root, "at": req.at });
                Self::append_in(tx, &mut tree, &format!("cosign:{origin}#{}", req.size), &event("cosigned", detail))?;
            }
            Ok(Ok(Message::Cosigned(Cosignature {
                size: req.size,
                cosigner: me,
                public_key: self.key.public_key().as_ref().to_vec(),
                signature,
            })))
        })?;
        self.tree = tree;
        Ok(answer)
    }

    /// The child's side: its newest checkpoint, if no cosignature covers it
    /// yet, as a request with the consistency proof from `from_size`.
    pub fn cosign_request(
        &self,
        from_size: Option<u64>,
    ) -> Result<Option<gdx_common::wire::CosignRequest>, AuditError> {
        let Some(cp) = self.last_checkpoint()? else { return Ok(None) };
        let done: Option<i64> = self.db.query_row("SELECT max(size) FROM cosignatures", args![], |r| r.get(0))?;
        let done = done.unwrap_or(0) as u64;
        if done >= cp.size {
            return Ok(None);
        }
        let from = from_size.unwrap_or(done).min(cp.size);
        let leaves = self.leaves(cp.size)?;
        let proof = if from == 0 {
            Vec::new()
        } else {
            merkle::consistency_proof(&leaves, from as usize).ok_or_else(|| damaged(cp.size))?
        };
        Ok(Some(gdx_common::wire::CosignRequest {
            public_key: self.key.public_key().as_ref().to_vec(),
            size: cp.size,
            root: hash_of(&cp.root).ok_or_else(|| damaged(cp.size))?.to_vec(),
            at: cp.at,
            signature: unhex(&cp.signature).ok_or_else(|| damaged(cp.size))?,
            from_size: from,
            proof: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    /// Keeps the parent's cosignature of a checkpoint, with the format it
    /// verifies in. A cosignature that does not verify over a checkpoint
    /// this hub signed, or that is under another key than those kept
    /// before, is not kept: the answer says why (the caller logs it).
    pub fn keep_cosignature(
        &self,
        c: &gdx_common::wire::Cosignature,
    ) -> Result<Result<(), CosignatureRefused>, AuditError> {
        let size = c.size;
        let signed: Option<(String, i64)> =
            self.db.query_opt("SELECT root, at FROM checkpoints WHERE size = ?1", args![size as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let Some((root, at)) = signed else {
            return Ok(Err(CosignatureRefused::NeverSigned { size }));
        };
        let Ok(key) = <[u8; 32]>::try_from(c.public_key.as_slice()).map(PublicKey::from_bytes) else {
            return Ok(Err(CosignatureRefused::KeyLength { size }));
        };
        let note = Checkpoint::note(&self.origin, size, &root, at);
        let (cosigner, signature) = (c.cosigner.to_string(), hex(&c.signature));
        let version = [COSIGNATURE_VERSION, 1]
            .into_iter()
            .find(|v| cosignature_note(*v, &cosigner, &note).is_some_and(|text| key.verifies(&text, &signature)));
        let Some(version) = version else {
            return Ok(Err(CosignatureRefused::DoesNotVerify { size, key: key.to_string() }));
        };
        let other: Option<String> = self.db.query_opt(
            "SELECT public_key FROM cosignatures WHERE public_key <> ?1 LIMIT 1",
            args![key.to_string()],
            |r| r.get(0),
        )?;
        if let Some(other) = other {
            return Ok(Err(CosignatureRefused::OtherKey { size, key: key.to_string(), other }));
        }
        self.db.execute(
            "INSERT INTO cosignatures (size, cosigner, public_key, signature, version) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (size) DO UPDATE SET cosigner = excluded.cosigner, public_key = excluded.public_key,
                signature = excluded.signature, version = excluded.version",
            args![size as i64, cosigner, key.to_string(), signature, version],
        )?;
        Ok(Ok(()))
    }

    /// The evidence of equivocation kept here, as JSON lines.
    pub fn evidence(&self) -> Result<Vec<serde_json::Value>, AuditError> {
        Ok(self.db.query("SELECT origin, at, what, held, received FROM evidence ORDER BY id", args![], |r| {
            Ok(serde_json::json!({ "origin": r.get::<String>(0)?, "at": r.get::<i64>(1)?,
                "what": r.get::<String>(2)?, "held": r.get::<String>(3)?, "received": r.get::<String>(4)? }))
        })?)
    }
}
