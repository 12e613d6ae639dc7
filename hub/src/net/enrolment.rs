//! Enrolment on `gdx-enroll/1`: a node without a certificate yet sends
//! one request with its token and CSR, and is answered with its chain or a
//! refusal before the connection closes.

use super::*;

impl Hub {
    /// Answers the one enrolment request of `conn`.
    pub(super) async fn serve_enrolment(self: &Arc<Self>, conn: quinn::Connection) {
        let Some((mut send, mut recv)) = accept_first_stream(&conn).await else { return };
        let req = match within(HELLO_TIMEOUT, frames::recv(&mut recv)).await {
            Ok(Some(Message::EnrollRequest(r))) => r,
            Err(FrameError::Wire(WireError::Version { theirs, .. })) => {
                let msg = format!(
                    "hub {} speaks gdx protocol {} and the enrolling node speaks gdx protocol {theirs}; upgrade the older of the two",
                    self.config.hub_id(),
                    wire::versions_spoken()
                );
                refuse(&conn, &mut send, RefusalCode::VersionMismatch, msg).await;
                return;
            }
            Err(FrameError::Stalled) => {
                let msg = format!("the enrolment request did not arrive within {} s", HELLO_TIMEOUT.as_secs());
                refuse(&conn, &mut send, RefusalCode::BadRequest, msg).await;
                return;
            }
            other => {
                let got = match &other {
                    Ok(m) => m.as_ref().map_or("nothing", Message::kind).to_owned(),
                    Err(e) => e.to_string(),
                };
                refuse(&conn, &mut send, RefusalCode::BadRequest, format!("expected an enrolment request, got {got}"))
                    .await;
                return;
            }
        };
        let answer = match self.store.lock() {
            Ok(mut store) => {
                let answer = enrol::enrol(&mut store, &self.config, &self.creds().auth, &req, now());
                // a new child hub's agents must attach to it from now on
                if let (Ok(children), Ok(serials)) = (store.child_hubs(), store.hub_serials()) {
                    self.policy.set_children(children);
                    self.policy.set_hub_serials(serials);
                }
                answer
            }
            Err(_) => Err(Refusal {
                code: RefusalCode::Internal,
                message: "the hub's database is unavailable; try again".into(),
            }),
        };
        let msg = match answer {
            Ok(enrolled) => {
                info!(node = ?gdx_certs::Identity::of(&enrolled.chain_der[0]).ok(), "node enrolled");
                Message::Enrolled(enrolled)
            }
            Err(refusal) => {
                info!(reason = %refusal.message, "enrolment refused");
                Message::Refused(refusal)
            }
        };
        if frames::send(&mut send, &msg).await.is_ok() {
            let _ = send.finish();
            // Let the node read the answer and close first.
            let _ = tokio::time::timeout(HELLO_TIMEOUT, conn.closed()).await;
        }
    }
}
