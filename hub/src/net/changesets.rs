//! A changeset received on an upload stream, taken in two steps: `check`
//! (its signer, signature, body and limits, and the frame kept with it)
//! and `store` (applied to its vault). A stream checks the next changeset
//! while the one before it is stored (`dispatch`), so decompressing and
//! decoding one and writing the other use two cores. Nothing is stored by
//! the check: a hub killed between the two steps has kept nothing of the
//! changeset, and its sender sends it again.

use super::*;
use gdx_common::data::{Changeset, ResourceCode};

/// A changeset that passed every check, ready for its vault.
pub(super) struct Checked {
    cs: Changeset,
    digest: [u8; 32],
    frame: Vec<u8>,
    body_len: usize,
}

impl Hub {
    /// Verifies one changeset from `node`, whose certificate is `cert`; the
    /// rejection (or refusal) to answer when it fails.
    pub(super) fn check_changeset(
        &self,
        node: &NodeId,
        role: Role,
        cert: &[u8],
        env: SignedChangeset,
    ) -> Result<Checked, Box<Message>> {
        let reject = |why: String| Box::new(rejected(&env.resource, env.seq, &env.origin, why));
        let signer = self
            .signer(node, role, cert, &env.origin, &env.signer_chain)
            .map_err(|e| reject(format!("changeset from {}: {e}", env.origin)))?;
        if let Err(e) = pki::verify_signature(&signer, &env.body, &env.signature) {
            let why = format!("{e}; it was altered after {} signed it", env.origin);
            return Err(reject(why));
        }
        let cs = decode_changeset(&env.body).map_err(|e| reject(e.to_string()))?;
        if cs.origin != env.origin || cs.resource != env.resource || cs.seq != env.seq {
            let why = "the changeset's contents do not match its envelope".to_owned();
            return Err(reject(why));
        }
        cs.validate().map_err(reject)?;
        let digest = pki::sha256(&env.body);
        let body_len = env.body.len();
        // Every hub keeps the signed frame: a child forwards it to its
        // parent, and grants are delivered from it.
        let frame = wire::encode_frame(&Message::Upload(env)).map_err(|e| {
            // it arrived as a frame, so it encodes as one; should it not, keep nothing and say so
            Box::new(internal(&format!("the hub could not keep the changeset's frame ({e}); it will be retried")))
        })?;
        Ok(Checked { cs, digest, frame, body_len })
    }

    /// Applies a checked changeset to its vault: the acknowledgement (sent
    /// once the commit is on disk), the gap, or why it was not stored.
    pub(super) fn store_changeset(&self, checked: Checked) -> Message {
        let Checked { cs, digest, frame, body_len } = checked;
        let started = std::time::Instant::now();
        match self.vaults.apply(&cs, &digest, Some(&frame), now()) {
            Ok(Applied::Applied) => {
                let m = crate::metrics::counters();
                m.changesets.inc();
                m.rows.inc_by(cs.changes.len() as u64);
                m.bytes.inc_by(body_len as u64);
                m.apply_seconds.observe(started.elapsed().as_secs_f64());
                info!(resource = %cs.resource, seq = cs.seq, rows = cs.changes.len(), "changeset applied");
                Message::Ack(Ack { resource: cs.resource, seq: cs.seq, duplicate: false })
            }
            Ok(Applied::Duplicate) => Message::Ack(Ack { resource: cs.resource, seq: cs.seq, duplicate: true }),
            Ok(Applied::Gap { expected }) => Message::Gap(Gap { resource: cs.resource, got: cs.seq, expected }),
            Err(VaultError::Schema(reason)) => rejected(&cs.resource, cs.seq, &cs.origin, reason),
            Err(e) => {
                warn!(error = %e, "vault write failed");
                not_stored("the changeset", &e)
            }
        }
    }
}

/// The answer rejecting changeset `seq` of `resource` from `origin`, logged.
fn rejected(resource: &ResourceCode, seq: u64, origin: &NodeId, reason: String) -> Message {
    warn!(%resource, seq, %origin, %reason, "changeset rejected");
    Message::Rejected(Rejected { resource: resource.clone(), seq, reason })
}
