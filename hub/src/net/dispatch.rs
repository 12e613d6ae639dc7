//! What a connected node's streams carry: uploads of changesets, catalogue
//! entries and exchange messages, each answered on its stream; catalogue
//! pulls and exchange batches of child hubs.

use super::*;
use crate::exchange::doorbell::Watcher;

/// The longest a `Watch` waits before it is answered all the same.
const WATCH_LONGEST: Duration = Duration::from_secs(20);

impl Hub {
    pub(super) async fn serve_node(
        self: &Arc<Self>,
        conn: quinn::Connection,
        order: u64,
        peer: Peer,
        unproven: super::gate::Unproven,
    ) {
        let Peer { node, role, serial, not_before, not_after, cert } = peer;
        let Some((mut send, mut recv)) = accept_first_stream(&conn).await else { return };
        let hello = match within(HELLO_TIMEOUT, frames::recv(&mut recv)).await {
            Ok(Some(Message::Hello(h))) => h,
            Ok(other) => {
                refuse(
                    &conn,
                    &mut send,
                    RefusalCode::BadRequest,
                    format!("expected a hello, got {}", other.as_ref().map_or("nothing", Message::kind)),
                )
                .await;
                return;
            }
            Err(FrameError::Wire(WireError::Version { theirs, ours })) => {
                let msg = format!(
                    "hub {} speaks gdx protocol {} and {role} {node} speaks gdx protocol {theirs}; upgrade the older of the two",
                    self.config.hub_id(),
                    wire::versions_spoken()
                );
                warn!(theirs, ours, "protocol version mismatch");
                refuse(&conn, &mut send, RefusalCode::VersionMismatch, msg).await;
                return;
            }
            Err(e) => {
                info!(error = %e, "no hello");
                refuse(&conn, &mut send, RefusalCode::BadRequest, format!("the hello could not be read: {e}")).await;
                return;
            }
        };
        if hello.node != node || hello.role != role {
            let msg = format!("the hello names {} {} but the certificate is for {role} {node}", hello.role, hello.node);
            refuse(&conn, &mut send, RefusalCode::NotAuthorized, msg).await;
            return;
        }
        let welcome = Message::Welcome(Welcome {
            hub: self.config.hub_id(),
            hub_name: self.config.name.clone(),
            software: concat!("gdx-hub ", env!("CARGO_PKG_VERSION")).to_owned(),
            now_ms: now_ms(),
        });
        if let Err(e) = frames::send(&mut send, &welcome).await {
            info!(error = %e, "welcome not delivered");
            return;
        }
        drop(unproven); // proven
        let id = conn.stable_id();
        // a probe is live too, so that revocation and expiry close it, but replaces nothing
        let live =
            Live { order, node: node.clone(), serial, not_before, not_after, probe: hello.probe, conn: conn.clone() };
        if !self.register(id, live) {
            info!("a newer connection of this node was already serving; this one is closed");
            return;
        }
        if hello.probe {
            info!(software = %hello.software, "probe connected");
        } else {
            info!(software = %hello.software, "node connected");
        }
        let cert = Arc::new(cert);
        let protocol = frames::protocol(&conn);
        let reason = loop {
            match conn.accept_bi().await {
                Ok((send, recv)) => {
                    let hub = self.clone();
                    let (node, cert) = (node.clone(), cert.clone());
                    tokio::spawn(
                        async move { hub.serve_uploads(node, role, cert, protocol, send, recv).await }
                            .in_current_span(),
                    );
                }
                Err(e) => break e,
            }
        };
        self.unregister(id, &node);
        info!(reason = %frames::describe_connection_error(&reason), "node disconnected");
    }

    /// Receives changesets on one stream, in order, and answers each with an
    /// acknowledgement (after commit), a gap, or a rejection. Each is checked
    /// while the one before it is stored (`super::changesets`). The answers
    /// go out in order from a task of their own: an answer about a
    /// changeset waits until its vault's commit is on disk (group commit,
    /// `crate::store::group_sync`), while the next changesets are applied.
    pub(super) async fn serve_uploads(
        self: Arc<Self>,
        node: NodeId,
        role: Role,
        cert: Arc<Vec<u8>>,
        protocol: u16,
        send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        let (answers, queue) = tokio::sync::mpsc::channel(ANSWERS_IN_FLIGHT);
        let mut answering = tokio::spawn(self.clone().answer_in_order(send, queue).in_current_span());
        tokio::select! {
            // the requests ended: the answers still queued go out
            () = self.serve_requests(node, role, cert, protocol, &mut recv, answers) => {
                let _ = answering.await;
            }
            // a refusal or a broken stream: stop reading too
            _ = &mut answering => {}
        }
    }

    /// Sends the answers in the order the requests came, each after the
    /// flush it waits for; stops at a refusal or when the stream fails.
    async fn answer_in_order(
        self: Arc<Self>,
        mut send: quinn::SendStream,
        mut queue: tokio::sync::mpsc::Receiver<(Vec<Message>, Option<u64>)>,
    ) {
        while let Some((answers, ticket)) = queue.recv().await {
            if let Some(ticket) = ticket {
                self.vaults.synced(ticket).await;
            }
            for answer in answers {
                let stop = matches!(answer, Message::Refused(_));
                if frames::send(&mut send, &answer).await.is_err() || stop {
                    return;
                }
            }
        }
    }

    /// Reads the requests of one stream and does each, handing the answers on.
    async fn serve_requests(
        self: &Arc<Self>,
        node: NodeId,
        role: Role,
        cert: Arc<Vec<u8>>,
        protocol: u16,
        recv: &mut quinn::RecvStream,
        answers: Answers,
    ) {
        // the changeset being stored while the next request is read and checked
        let mut storing: Option<tokio::task::JoinHandle<Message>> = None;
        loop {
            // the changeset being stored is answered as soon as it is, though no request follows;
            // the idle limit counts from here, so a store longer than it ends the stream once
            // answered (the sender opens another), and at most two changesets of a stream are in
            // the hub's memory at once: the one stored and the one checked
            let next = frames::recv_after(recv, Some(UPLOAD_IDLE));
            tokio::pin!(next);
            let received = loop {
                let Some(handle) = storing.as_mut() else { break next.await };
                tokio::select! {
                    received = &mut next => break received,
                    answer = handle => {
                        storing = None;
                        if !self.hand_on_stored(answer, &answers).await {
                            return;
                        }
                    }
                }
            };
            // anything but a changeset waits until the one being stored is answered
            let upload = matches!(received, Ok(Some(Message::Upload(_))));
            if !upload && !self.stored(storing.take(), &answers).await {
                return;
            }
            let work: Work = match received {
                Ok(Some(Message::Upload(e))) => {
                    let (hub, node, cert) = (self.clone(), node.clone(), cert.clone());
                    let checked = tokio::task::spawn_blocking(move || hub.check_changeset(&node, role, &cert, e)).await;
                    // the one before is answered first
                    if !self.stored(storing.take(), &answers).await {
                        return;
                    }
                    let answered = match checked {
                        Ok(Ok(checked)) => {
                            let hub = self.clone();
                            storing = Some(tokio::task::spawn_blocking(move || hub.store_changeset(checked)));
                            true
                        }
                        Ok(Err(rejected)) => hand_on(&answers, vec![*rejected], None).await,
                        Err(_) => hand_on(&answers, vec![failed()], None).await,
                    };
                    if !answered {
                        return;
                    }
                    continue;
                }
                // a kind of protocol 3 only on its connections: an older peer never sees a `Ring`
                Ok(Some(Message::Watch(seen))) if protocol >= wire::PUSH => {
                    let who = match role {
                        Role::Agent => Watcher::Agent(node.clone()),
                        Role::Hub => Watcher::ChildHub(node.division()),
                    };
                    let count = self.watch(&who, seen).await;
                    if answers.send((vec![Message::Ring(count)], None)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(Some(Message::NodeReport(report))) if role == Role::Hub => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| {
                        let revoke = hub.store.lock().map_err(|_| ()).and_then(|s| {
                            s.record_report(&node, &report, now()).and_then(|()| s.revoked_below(&node)).map_err(|e| {
                                warn!(error = %e, "cannot record a child hub's report");
                            })
                        });
                        vec![Message::ReportAck(wire::ReportAck { revoke: revoke.unwrap_or_default() })]
                    })
                }
                Ok(Some(Message::Renew(req))) => {
                    let (node, cert) = (node.clone(), cert.clone());
                    Box::new(move |hub: &Hub| vec![hub.renew(&node, role, &cert, &req)])
                }
                Ok(Some(Message::RenewCa(req))) => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.renew_ca(&node, role, &req)])
                }
                Ok(Some(Message::AskRoots(theirs))) => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.roots(&node, &theirs)])
                }
                Ok(Some(Message::Observations(days))) if role == Role::Hub => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.take_observations(&node, &days)])
                }
                Ok(Some(Message::CatalogPull(pull))) if role == Role::Hub => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| hub.serve_pull(&node, pull))
                }
                Ok(Some(Message::ExchangePush(batch))) if role == Role::Hub => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.exchange_push(&node, &batch)])
                }
                Ok(Some(Message::Cosign(req))) if role == Role::Hub => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| {
                        let answer =
                            hub.audit.lock().map_err(|_| ()).map(|mut a| a.cosign(&node.to_string(), &req, now()));
                        vec![match answer {
                            Ok(Ok(Ok(m))) => m,
                            Ok(Ok(Err(refused))) => Message::Refused(Refusal {
                                code: RefusalCode::NotAuthorized,
                                message: refused.to_string(),
                            }),
                            _ => internal("the hub's audit log is unavailable; the checkpoint will be sent again"),
                        }]
                    })
                }
                Ok(Some(Message::ExchangePull(since))) if role == Role::Hub => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.exchange_pull(&node, since)])
                }
                Ok(Some(
                    m @ (Message::FileRequest(_) | Message::ListRequests | Message::Decide(_) | Message::Fetch(_)),
                )) if role == Role::Agent => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.exchange_ask(&node, m)])
                }
                Ok(Some(m @ (Message::Lookup(_) | Message::Within(_)))) if role == Role::Agent => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.lookup(&node, m)])
                }
                Ok(Some(
                    m @ (Message::ListNotices | Message::ActOnNotice(_) | Message::Check(_) | Message::Feedback(_)),
                )) if role == Role::Agent => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| vec![hub.supervision_ask(&node, m)])
                }
                Ok(Some(Message::Quality(report))) if role == Role::Agent => {
                    let node = node.clone();
                    Box::new(move |hub: &Hub| {
                        if let Err(why) = report.check() {
                            return vec![Message::Refused(Refusal { code: RefusalCode::BadRequest, message: why })];
                        }
                        let Ok(store) = hub.store.lock() else {
                            return vec![internal("the hub's database is unavailable; the report will be sent again")];
                        };
                        vec![match store.record_quality(&node, &report, now()) {
                            Ok(()) => {
                                Message::QualityNoted(wire::QualityNoted { resource: report.resource, at: report.at })
                            }
                            Err(e) => {
                                warn!(error = %e, "cannot record a quality report");
                                not_stored("the quality report", &e)
                            }
                        }]
                    })
                }
                Ok(Some(Message::Publish(e))) => {
                    let (node, cert) = (node.clone(), cert.clone());
                    Box::new(move |hub: &Hub| {
                        let signer = hub.signer(&node, role, &cert, &e.origin, &e.signer_chain);
                        let via = (e.origin != node).then_some(&node);
                        vec![match hub.catalog.lock() {
                            Ok(mut c) => catalog::accept(&mut c, signer, via, e, now()),
                            Err(_) => Message::Refused(Refusal {
                                code: RefusalCode::Internal,
                                message: "the hub's catalogue is unavailable; it will be retried".into(),
                            }),
                        }]
                    })
                }
                Ok(None) => return,
                Ok(Some(other)) => {
                    let refused = Message::Refused(Refusal {
                        code: RefusalCode::BadRequest,
                        message: format!("unexpected message {}", other.kind()),
                    });
                    let _ = answers.send((vec![refused], None)).await;
                    return;
                }
                Err(e) => {
                    info!(error = %e, "upload stream ended");
                    return;
                }
            };
            let hub = self.clone();
            let done = tokio::task::spawn_blocking(move || work(&hub)).await.unwrap_or_else(|_| vec![failed()]);
            if !hand_on(&answers, done, None).await {
                return;
            }
        }
    }

    /// Waits for the changeset being stored, if one is, and hands its
    /// answer on with the flush it waits for; false when the stream is done.
    async fn stored(&self, storing: Option<tokio::task::JoinHandle<Message>>, answers: &Answers) -> bool {
        let Some(storing) = storing else { return true };
        self.hand_on_stored(storing.await, answers).await
    }

    /// Hands on the answer of a changeset stored, with the flush it waits for.
    async fn hand_on_stored(&self, answer: Result<Message, tokio::task::JoinError>, answers: &Answers) -> bool {
        let answer = answer.unwrap_or_else(|_| failed());
        // taken after the work: its commit is in this batch or an earlier one
        let ticket = self.vaults.ticket();
        hand_on(answers, vec![answer], Some(ticket)).await
    }

    /// Waits until `who`'s doorbell count differs from `seen` (at once if it
    /// already does), or [`WATCH_LONGEST`] passed; returns the count.
    async fn watch(&self, who: &Watcher, seen: u64) -> u64 {
        let mut bell = self.doorbell.watch(who);
        let waited = tokio::time::timeout(WATCH_LONGEST, bell.wait_for(|n| *n != seen)).await;
        match waited.map(|changed| changed.map(|n| *n)) {
            Ok(Ok(n)) => n,
            _ => *bell.borrow(),
        }
    }

    /// The certificate whose key must have signed something `origin`
    /// published, sent by `node` (role `role`, certificate `cert`) with
    /// `chain`: the connection's own certificate when the origin sent it
    /// itself; when a child hub relays it, the origin's chain, verified to
    /// the root and lying in the child's division.
    pub(super) fn signer(
        &self,
        node: &NodeId,
        role: Role,
        cert: &[u8],
        origin: &NodeId,
        chain: &[Vec<u8>],
    ) -> Result<Vec<u8>, String> {
        use gdx_common::relay::{self, Signer, Via};
        match relay::via(node, role, origin).map_err(|e| e.to_string())? {
            Via::Origin if chain.first().map(Vec::as_slice) == Some(cert) => Ok(cert.to_vec()),
            // signed before a renewal: another valid, unrevoked certificate of the same node
            Via::Origin => match self.creds().chains.verify(chain, now()) {
                Ok(Identity::Node { node: n, role: r, serial, not_before, .. })
                    if &n == node
                        && r == role
                        && !self.policy.node_revoked(&n, &serial, not_before)
                        && !self.policy.chain_revoked(chain.iter().skip(1).map(Vec::as_slice))
                        // one this hub recorded for the node (issued or renewed here)
                        && self.store.lock().is_ok_and(|s| s.cert_of_node(node, &serial).unwrap_or(false)) =>
                {
                    Ok(chain.first().cloned().unwrap_or_default())
                }
                _ => Err(relay::RelayRefused::NotTheConnectionsCertificate.to_string()),
            },
            Via::ChildHub => {
                let signer = match self.creds().chains.verify(chain, now()) {
                    Ok(Identity::Node { node, role, serial, not_before, .. }) => Signer::Node {
                        revoked: self.policy.node_revoked(&node, &serial, not_before)
                            || self.policy.chain_revoked(chain.iter().skip(1).map(Vec::as_slice)),
                        node,
                        role,
                    },
                    Ok(Identity::Ca { .. }) => Signer::Ca,
                    Err(e) => return Err(format!("its signer's certificate does not verify: {e}")),
                };
                relay::check_signer(origin, &signer).map_err(|e| e.to_string())?;
                Ok(chain.first().cloned().unwrap_or_default())
            }
        }
    }

    /// A child hub's catalogue pull: note its subtree's data changes, then
    /// send what was recorded here since its last pull.
    pub(super) fn serve_pull(&self, child: &NodeId, pull: wire::CatalogPull) -> Vec<Message> {
        let internal = |e: String| {
            vec![Message::Refused(Refusal {
                code: RefusalCode::Internal,
                message: format!("the hub could not read its catalogue ({e}); it will be retried"),
            })]
        };
        let Ok(c) = self.catalog.lock() else { return internal("lock".into()) };
        if let Err(e) = c.note_changes(&pull.changed, child.division()) {
            return internal(e.to_string());
        }
        match c.pull(pull.since, child.division(), now()) {
            Ok((frames, upto, changed)) => {
                let mut out: Vec<Message> =
                    frames.iter().filter_map(|f| wire::decode_frame(f).ok().flatten().map(|(m, _)| m)).collect();
                out.push(Message::CatalogPulled(wire::CatalogPulled { upto, changed }));
                out
            }
            Err(e) => internal(e.to_string()),
        }
    }

    /// This hub's catalogue entry `code` and whether it is withdrawn.
    pub(super) fn entry(&self, code: &str) -> Option<(CatalogEntry, bool)> {
        let c = self.catalog.lock().ok()?;
        c.get(code, now()).ok().flatten().map(|l| (l.entry, l.withdrawn))
    }

    /// An agent's exchange request: file, list, decide or fetch.
    pub(super) fn exchange_ask(&self, node: &NodeId, m: Message) -> Message {
        let now = crate::exchange::clock();
        let entry = match &m {
            Message::FileRequest(f) => self.entry(&f.code),
            _ => None,
        };
        let Ok(mut x) = self.exchange.lock() else {
            return internal("the exchange store is unavailable");
        };
        let answer = match m {
            Message::FileRequest(form) => {
                x.file(node, &form, entry, now).map(|r| r.map(|r| Message::RequestAnswer(Box::new(r.for_agent()))))
            }
            Message::ListRequests => x.records_of(node).map(|r| Ok(Message::Requests(r))),
            Message::Decide(d) => x
                .decide(node, &d, |code| self.entry(code).map(|e| e.0), now)
                .map(|r| r.map(|r| Message::RequestAnswer(Box::new(r.for_agent())))),
            Message::Fetch(f) => x.fetch(node, &f.id, f.after, now).map(|r| r.map(Message::Deliveries)),
            _ => return internal("not an exchange request"),
        };
        exchange_answer(answer)
    }

    /// An agent's lookup, by key or by box, answered without the exchange
    /// store's lock (`crate::exchange::Lookups`).
    pub(super) fn lookup(&self, node: &NodeId, m: Message) -> Message {
        let now = crate::exchange::clock();
        let Ok(mut l) = self.lookups.lock() else {
            return internal("the exchange store is unavailable");
        };
        let answer = match m {
            Message::Lookup(q) => l.lookup(node, &q.code, &q.key, now).map(|r| r.map(Message::LookupAnswer)),
            Message::Within(q) => l.within(node, &q.code, &q.bbox, q.limit, now).map(|r| r.map(Message::WithinAnswer)),
            _ => return internal("not a lookup"),
        };
        exchange_answer(answer)
    }

    /// An agent's 双告知 or 联合惩戒 request: list, claim or pass on its
    /// notices; check a subject; report what it did after a check.
    pub(super) fn supervision_ask(&self, node: &NodeId, m: Message) -> Message {
        let now = crate::exchange::clock();
        let table = self.supervision.read().map(|c| c.table.clone()).unwrap_or_default();
        let Ok(mut x) = self.exchange.lock() else {
            return internal("the exchange store is unavailable");
        };
        let answer = match m {
            Message::ListNotices => x.notices(Some(node)).map(|n| Ok(Message::Notices(n))),
            Message::ActOnNotice(act) => {
                x.act_on_notice(node, &act, now).map(|r| r.map(|n| Message::NoticeAnswer(Box::new(n))))
            }
            Message::Check(q) => {
                let entries = |code: &str| self.entry(code).filter(|(_, withdrawn)| !withdrawn).map(|(e, _)| e);
                crate::supervision::discipline::check(&table, &entries, &self.vaults, &mut x, node, &q, now)
                    .map(|r| r.map(|c| Message::CheckAnswer(Box::new(c))))
            }
            Message::Feedback(f) => {
                x.feedback(node, &f.id, f.action, &f.reason, now).map(|r| r.map(|c| Message::CheckAnswer(Box::new(c))))
            }
            _ => return internal("not a supervision request"),
        };
        exchange_answer(answer)
    }

    /// A child hub's push: requests, decisions, deliveries and progress of its subtree.
    pub(super) fn exchange_push(&self, child: &NodeId, batch: &wire::ExchangeBatch) -> Message {
        let Ok(mut x) = self.exchange.lock() else {
            return internal("the exchange store is unavailable");
        };
        // a withdrawn entry grants nothing: refiled against it, a request is refused
        let live = |code: &str| self.entry(code).filter(|e| !e.1).map(|e| e.0);
        match x.merge(batch, Some(child.division()), &live, None) {
            Ok(()) => Message::ExchangePushed(batch.upto),
            Err(e) => {
                warn!(error = %e, "exchange push not stored");
                not_stored("the exchange push", &e)
            }
        }
    }

    /// A child hub's pull: what concerns its subtree since `since`.
    pub(super) fn exchange_pull(&self, child: &NodeId, since: u64) -> Message {
        let Ok(x) = self.exchange.lock() else {
            return internal("the exchange store is unavailable");
        };
        match x.batch_since(since, Some(child.division())) {
            Ok(b) => Message::ExchangePulled(b),
            Err(e) => internal(&format!("the hub could not read its exchange store ({e}); it will be retried")),
        }
    }

    /// A node's renewal over its connection (`crate::enrol::renew`).
    pub(super) fn renew(&self, node: &NodeId, role: Role, cert: &[u8], req: &wire::RenewRequest) -> Message {
        let Ok(store) = self.store.lock() else {
            return internal("the hub database is unavailable");
        };
        match crate::enrol::renew(&store, &self.config, &self.creds().auth, node, role, cert, &req.csr_der, now()) {
            Ok(renewed) => {
                info!(%node, "certificate renewed");
                // a child hub connects with its renewed certificate from now on
                if let Ok(serials) = store.hub_serials() {
                    self.policy.set_hub_serials(serials);
                }
                Message::Renewed(renewed)
            }
            Err(refusal) => Message::Refused(refusal),
        }
    }

    /// A child hub's intermediate CA renewed (`crate::rollover`).
    pub(super) fn renew_ca(&self, node: &NodeId, role: Role, req: &wire::RenewCaRequest) -> Message {
        let Ok(store) = self.store.lock() else {
            return internal("the hub database is unavailable");
        };
        match crate::rollover::renew_intermediate(&store, &self.config, &self.creds().auth, node, role, req, now()) {
            Ok(renewed) => {
                info!(%node, "intermediate CA renewed");
                Message::Renewed(renewed)
            }
            Err(refusal) => Message::Refused(refusal),
        }
    }

    /// The roots this hub trusts, read afresh (a rollover prepared while it
    /// runs is offered at once); what the node said it trusts is recorded
    /// for `gdx-hub ca status`.
    pub(super) fn roots(&self, node: &NodeId, theirs: &[Vec<u8>]) -> Message {
        let mine = match crate::rollover::trusted_roots(&HubPaths::new(&self.dir)) {
            Ok(r) if !r.is_empty() => r,
            _ => return internal("the hub's roots cannot be read"),
        };
        let theirs: Vec<Vec<u8>> = theirs.iter().take(gdx_certs::trust::MAX_ROOTS).cloned().collect();
        self.with_store(|s| s.record_roots(node, crate::rollover::missing(&theirs, &mine), now()));
        Message::Roots(mine)
    }

    /// A child hub's observations of its departments, for 考核: days of
    /// its own subtree are kept, the others refused and logged.
    pub(super) fn take_observations(&self, child: &NodeId, days: &[gdx_common::evaluation::DayFacts]) -> Message {
        if days.len() > gdx_common::evaluation::MAX_FACTS {
            return Message::Refused(Refusal {
                code: RefusalCode::BadRequest,
                message: format!("send at most {} days of observations at once", gdx_common::evaluation::MAX_FACTS),
            });
        }
        let Ok(store) = self.store.lock() else {
            return internal("the hub database is unavailable");
        };
        match store.record_observations(child, days, now()) {
            Ok((taken, refused)) => {
                if let Some(first) = refused.first() {
                    warn!(%child, refused = refused.len(), reason = %first, "a child hub's observations refused");
                }
                Message::ObservationsTaken(taken)
            }
            Err(e) => not_stored("the observations", &e),
        }
    }
}

/// Where a stream's answers wait to go out in order, each with the vault
/// flush it waits for.
type Answers = tokio::sync::mpsc::Sender<(Vec<Message>, Option<u64>)>;

/// Hands `done` on to be sent after flush `ticket`; false when the stream
/// is done: the answering task stopped, or `done` refuses (after a refusal
/// nothing more on the stream is done; the answering task stops there too).
async fn hand_on(answers: &Answers, done: Vec<Message>, ticket: Option<u64>) -> bool {
    let refused = done.iter().any(|m| matches!(m, Message::Refused(_)));
    answers.send((done, ticket)).await.is_ok() && !refused
}

/// The refusal answering a request whose work failed (a panic, caught).
fn failed() -> Message {
    internal("the hub failed while storing what was sent; it will be retried")
}

/// The message answering an exchange, lookup or supervision request: the answer, the refusal, or
/// why the store failed.
fn exchange_answer(
    answer: Result<Result<Message, crate::exchange::Refusal>, crate::exchange::ExchangeError>,
) -> Message {
    match answer {
        Ok(Ok(m)) => m,
        Ok(Err(refused)) => Message::Refused(refused.to_wire()),
        Err(e) if gdx_files::disk_full(&e) => disk_full_now(),
        Err(e @ crate::exchange::ExchangeError::Hub(_)) => {
            warn!(error = %e, "hub database failed");
            internal(&format!("the hub's database failed ({e}); try again"))
        }
        Err(e) => {
            warn!(error = %e, "exchange store failed");
            internal(&format!("the hub's exchange store failed ({e}); try again"))
        }
    }
}
