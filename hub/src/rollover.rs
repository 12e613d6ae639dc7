//! The roots a hub trusts, the province's root rollover, and the renewal
//! of a prefecture's intermediate CA by the province.
//!
//! Files (the data directory): a prefecture keeps the roots it trusts in
//! `root.crt`; the province trusts its `ca.crt`, the cross-certificates of a
//! prepared root (`ca-cross.crt`) and the roots it issued under before
//! (`ca-previous.crt`, where a prefecture also keeps its old
//! intermediates). A rollover, at the province, with `ca.key` in place:
//!
//! 1. `gdx-hub ca rollover` makes the next root (`ca-next.crt`,
//!    `ca-next.key`) and its cross-certificate, signed by the current root
//!    (`ca-cross.crt`); from then on every node that connects takes it
//!    (`gdx_link::roots`), the prefectures passing it on to their agents.
//! 2. `gdx-hub ca status`, at each hub, lists the nodes that do not trust
//!    it yet.
//! 3. `gdx-hub ca switch`, the hub stopped: the next root becomes `ca.crt`
//!    (the old one kept in `ca-previous.crt`, still trusted), the hub gets a
//!    certificate under it, and from the start after, everything issued is
//!    under it: enrolments, renewals, and each prefecture's intermediate,
//!    renewed at the prefecture's next connection. Certificates under the
//!    old root stay valid until they end; the cross-certificate in every
//!    hub's chain lets a node that missed the rollover still verify the
//!    province, and take the new root at that connection.

use anyhow::Context;
use gdx_certs::pki::{self, Ca, Identity};
use gdx_certs::trust;
use gdx_common::wire::{Refusal, RefusalCode, RenewCaRequest, Renewed};
use gdx_common::{NodeId, Role};

use crate::config::HubConfig;
use crate::enrol::Authority;
use crate::store::{HubPaths, Store};

/// The roots this hub trusts, the one it issues under (the province) or
/// was issued under (a prefecture) first.
pub fn trusted_roots(paths: &HubPaths) -> anyhow::Result<Vec<Vec<u8>>> {
    if paths.root_cert().exists() {
        return read_optional(&paths.root_cert());
    }
    let mut roots = read_optional(&paths.ca_cert())?;
    roots.truncate(1);
    roots.extend(read_optional(&paths.ca_cross())?);
    roots.extend(read_optional(&paths.ca_previous())?);
    roots.truncate(trust::MAX_ROOTS);
    Ok(roots)
}

/// The certificates of a PEM file, none when it does not exist.
pub fn read_optional(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(trust::read(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Appends `cert` to the PEM file at `path` unless it holds it already.
pub fn append(path: &std::path::Path, cert: &[u8]) -> anyhow::Result<()> {
    let mut all = read_optional(path)?;
    if !all.iter().any(|c| c == cert) {
        all.push(cert.to_vec());
        gdx_files::replace(path, trust::write(&all).as_bytes(), false)?;
    }
    Ok(())
}

fn province_ca(paths: &HubPaths, what: &str) -> anyhow::Result<Ca> {
    if paths.root_cert().exists() {
        anyhow::bail!(
            "only the province hub has a root to roll over; a prefecture hub's intermediate CA is renewed by the province over its link"
        );
    }
    if !paths.ca_key().exists() {
        anyhow::bail!(
            "{what} needs the root's key: put ca.key back in {} (0600) and run it again",
            paths.dir.display()
        );
    }
    Ok(Ca::from_pem(&std::fs::read_to_string(paths.ca_cert())?, &gdx_files::read_private(&paths.ca_key())?)?)
}

/// `gdx-hub ca rollover`: prepares the next root and its cross-certificate.
/// Run again after a kill, it finishes what the first run began.
pub fn prepare(paths: &HubPaths, config: &HubConfig, now: i64) -> anyhow::Result<String> {
    let matches = gdx_link::renew::pem_pair_matches;
    gdx_files::pair::finish(&paths.ca_next_key(), &paths.ca_next_cert(), matches)?;
    let ca = province_ca(paths, "a rollover")?;
    let next = match next_root(paths)? {
        Some(next) if crossed(paths, &next.cert_der)? => anyhow::bail!(
            "a rollover is prepared already (ca-next.crt); run `gdx-hub ca status` and, once every node trusts the new root, `gdx-hub ca switch`"
        ),
        // cut short between the new root and its cross-certificate
        Some(next) => next,
        None => {
            let (next, _) = ca.next_root(&config.name, now)?;
            gdx_files::pair::switch(&paths.ca_next_key(), &next.key_pem(), &paths.ca_next_cert(), &next.cert_pem())?;
            next
        }
    };
    append(&paths.ca_cross(), &ca.cross_certify(&next)?)?;
    let fingerprint = gdx_common::token::hex(&next.fingerprint());
    Store::open(paths)?.note(&gdx_common::audit::Event {
        kind: "rollover".into(),
        at: now,
        node: Some(config.hub_id().to_string()),
        detail: serde_json::json!({ "step": "prepared", "root": fingerprint }),
        ..Default::default()
    })?;
    Ok(format!(
        "prepared the next root (SHA-256 {fingerprint}); every node takes it at its next connection (within six hours for a connected agent). \
         Follow with `gdx-hub ca status` here and at each prefecture hub, then stop this hub, run `gdx-hub ca switch` and start it"
    ))
}

/// The prepared next root, if any.
fn next_root(paths: &HubPaths) -> anyhow::Result<Option<Ca>> {
    if !paths.ca_next_cert().exists() {
        // a key alone is what a finished switch left when cut short
        let _ = std::fs::remove_file(paths.ca_next_key());
        return Ok(None);
    }
    let cert = std::fs::read_to_string(paths.ca_next_cert())?;
    Ok(Some(Ca::from_pem(&cert, &gdx_files::read_private(&paths.ca_next_key())?)?))
}

/// Whether `ca-cross.crt` holds a cross-certificate of `root`.
fn crossed(paths: &HubPaths, root: &[u8]) -> anyhow::Result<bool> {
    Ok(read_optional(&paths.ca_cross())?.iter().any(|c| trust::same_anchor(c, root)))
}

/// `gdx-hub ca switch`: the prepared root becomes the one this hub issues
/// under. Each step leaves a directory `gdx-hub run` serves; run again
/// after a kill, it carries on from the step it reached.
pub fn switch(paths: &HubPaths, config: &HubConfig, now: i64) -> anyhow::Result<String> {
    let matches = gdx_link::renew::pem_pair_matches;
    gdx_files::pair::finish(&paths.ca_next_key(), &paths.ca_next_cert(), matches)?;
    gdx_files::pair::finish(&paths.ca_key(), &paths.ca_cert(), matches)?;
    let ca = province_ca(paths, "the switch")?;
    let store = Store::open(paths)?;
    if store.hub_running(now)? {
        anyhow::bail!(
            "the hub is running; stop it (systemctl stop gdx-hub), run `gdx-hub ca switch` again, then start it (a hub that was killed counts as running for {} s more)",
            crate::store::HEARTBEAT_STALE_SECS
        );
    }
    let (_, rows) = status(paths)?;
    let behind: Vec<&str> = rows.iter().filter(|r| r.missing != Some(0)).map(|r| r.node.as_str()).collect();
    if !behind.is_empty() {
        eprintln!(
            "warning: {} nodes enrolled here have not said they trust the new root ({}{}); one of gdx protocol 2 or later still connects after the switch, through the cross-certificate, and takes it then; one of protocol 1 cannot connect after the switch: upgrade those first",
            behind.len(),
            behind.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            if behind.len() > 5 { ", …" } else { "" }
        );
    }
    let (old, new) = match next_root(paths)? {
        // the next root is already ca.crt: a switch cut short after its files moved
        Some(next) if trust::same_anchor(&next.cert_der, &ca.cert_der) => (None, ca),
        Some(next) if crossed(paths, &next.cert_der)? => (Some(ca), next),
        Some(_) => anyhow::bail!(
            "the prepared root has no cross-certificate yet, so no node could take it; run `gdx-hub ca rollover` again to finish it"
        ),
        None => anyhow::bail!("no rollover is prepared; run `gdx-hub ca rollover` first"),
    };
    if let Some(old) = &old {
        // the old root kept, and certified by the new one, so that nodes enrolled from now on verify what it issued
        append(&paths.ca_previous(), &old.cert_der)?;
        let back = read_optional(&paths.ca_cross())?;
        if !back.iter().any(|c| trust::same_anchor(c, &old.cert_der) && trust::issued_by(c, &new.cert_der)) {
            append(&paths.ca_cross(), &new.cross_certify(old)?)?;
        }
        gdx_files::pair::switch(&paths.ca_key(), &new.key_pem(), &paths.ca_cert(), &new.cert_pem())?;
    }
    let hub_cert = read_optional(&paths.hub_cert())?.into_iter().next().unwrap_or_default();
    let until = if trust::issued_by(&hub_cert, &new.cert_der) {
        trust::validity(&hub_cert).map_or(0, |(_, to)| to)
    } else {
        crate::init::issue_own(paths, config, &new, now)?
    };
    // the HTTPS API's certificate is issued again, under the new root, at the next start
    let _ = std::fs::remove_file(paths.https_cert());
    let fingerprint = gdx_common::token::hex(&new.fingerprint());
    store.note(&gdx_common::audit::Event {
        kind: "rollover".into(),
        at: now,
        node: Some(config.hub_id().to_string()),
        detail: serde_json::json!({ "step": "switched", "root": fingerprint, "hub_until": until }),
        ..Default::default()
    })?;
    // last, the certificate before the key: a kill between leaves a key alone, which the next run removes
    std::fs::remove_file(paths.ca_next_cert())?;
    std::fs::remove_file(paths.ca_next_key())?;
    Ok(format!(
        "this hub now issues under the new root (SHA-256 {fingerprint}); start it. Tokens pin the new root from now on; \
         each prefecture's intermediate CA is renewed under it at the prefecture's next connection, and every certificate at its renewal. \
         Keep ca.key offline again if that is your practice"
    ))
}

/// Whether a prefecture's intermediate CA `current` (DER) is to be renewed
/// at `now` under `issuing` (the parent's current root): past two thirds of
/// its life, or issued under another root.
pub fn intermediate_due(current: &[u8], issuing: &[u8], now: i64) -> bool {
    let due = trust::validity(current).is_some_and(|(from, to)| gdx_common::renewal::due(from, to, now));
    due || !trust::issued_by(current, issuing)
}

/// The parent's side of [`gdx_common::wire::Message::RenewCa`]: `node`, a
/// child hub, asks to certify a new key as its division's intermediate CA.
/// Renewed once per intermediate, only one of this province, and only past
/// half its life or when it is under an older root.
pub fn renew_intermediate(
    store: &Store,
    config: &HubConfig,
    auth: &Authority,
    node: &NodeId,
    role: Role,
    req: &RenewCaRequest,
    now: i64,
) -> Result<Renewed, Refusal> {
    let refuse = |code, message: String| Refusal { code, message };
    if role != Role::Hub {
        return Err(refuse(RefusalCode::NotAuthorized, "only a child hub has an intermediate CA to renew".into()));
    }
    let division = node.division();
    let (Ok(Identity::Ca { division: named, serial: old, .. }), Some((from, to))) =
        (Identity::of(&req.current_der), trust::validity(&req.current_der))
    else {
        return Err(refuse(RefusalCode::BadRequest, "the CA certificate to renew cannot be read".into()));
    };
    if named != division || !auth.roots.iter().any(|r| trust::issued_by(&req.current_der, r)) {
        return Err(refuse(
            RefusalCode::NotAuthorized,
            format!("the CA certificate to renew is not the intermediate CA of {division} under this province's root"),
        ));
    }
    let public_key = pki::csr_public_key(&req.csr_der).map_err(|e| refuse(RefusalCode::BadRequest, e.to_string()))?;
    let internal = |e: crate::store::StoreError| {
        refuse(RefusalCode::Internal, format!("the hub could not record the renewal ({e}); it is asked again later"))
    };
    // an answer lost on the way is given again for the same key
    match store.renewal_check(node, &old, &public_key).map_err(internal)? {
        crate::store::RenewalCheck::Refused(why) => return Err(refuse(RefusalCode::NotAuthorized, why)),
        crate::store::RenewalCheck::Again(cert) => return Ok(Renewed { chain_der: vec![cert] }),
        crate::store::RenewalCheck::New => {}
    }
    // only the intermediate this hub last issued for that hub, and never one that has ended
    if store.newest_ca(node).map_err(internal)?.as_deref() != Some(old.as_str()) {
        return Err(refuse(
            RefusalCode::NotAuthorized,
            format!("the CA certificate to renew is not the intermediate CA this hub last issued for {node}"),
        ));
    }
    if now >= to {
        return Err(refuse(RefusalCode::BadRequest, "the intermediate CA has ended; join the hub again".into()));
    }
    let under_old_root = !trust::issued_by(&req.current_der, &auth.ca_der);
    if !under_old_root && let Err(m) = gdx_common::renewal::may_renew(from, to, now) {
        return Err(refuse(RefusalCode::BadRequest, m));
    }
    let Some(ca) = &auth.ca else {
        return Err(refuse(
            RefusalCode::Queued,
            format!(
                "hub {} keeps its CA key offline; the intermediate CA is renewed once ca.key is back",
                config.hub_id()
            ),
        ));
    };
    let cert = ca
        .issue_intermediate(&req.csr_der, division, &division.name(), now)
        .map_err(|e| refuse(RefusalCode::BadRequest, e.to_string()))?;
    let Ok(Identity::Ca { serial, not_after, .. }) = Identity::of(&cert) else {
        return Err(refuse(RefusalCode::Internal, "the hub issued an unreadable certificate".into()));
    };
    store.record_renewal(node, "ca", &serial, not_after, &old, &public_key, &cert, now).map_err(internal)?;
    Ok(Renewed { chain_der: vec![cert.to_vec()] })
}

/// A row of `gdx-hub ca status`: a node enrolled here, and whether it
/// told this hub it trusts every root this hub trusts.
#[derive(serde::Serialize)]
pub struct TrustRow {
    pub node: String,
    /// How many of this hub's roots it lacks, as it last said; `None` when
    /// it never said (a node of protocol 1, or not connected since this
    /// version).
    pub missing: Option<i64>,
    pub at: Option<i64>,
}

/// `gdx-hub ca status`: the roots trusted here, and each unrevoked node
/// enrolled here with what it said it trusts. A node told again after
/// this hub took a new root counts only from then.
pub fn print_status(paths: &HubPaths, json: bool) -> anyhow::Result<()> {
    let (roots, rows) = status(paths)?;
    if json {
        let roots: Vec<String> = roots.iter().map(|r| gdx_common::token::hex(&pki::fingerprint(r))).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "roots": roots, "nodes": rows }))?);
        return Ok(());
    }
    println!("roots trusted here (the one issued under first):");
    for r in &roots {
        let name = trust::subject(r);
        println!("  {}  {name}", gdx_common::token::hex(&pki::fingerprint(r)));
    }
    let behind = rows.iter().filter(|r| r.missing != Some(0)).count();
    println!("\n{:<24} {:<14} SINCE", "NODE", "ROOTS");
    for r in &rows {
        let state = match r.missing {
            Some(0) => "all".to_owned(),
            Some(n) => format!("missing {n}"),
            None => "not told".to_owned(),
        };
        let at = r.at.map(gdx_common::units::format_time).unwrap_or_default();
        println!("{:<24} {:<14} {at}", r.node, state);
    }
    println!(
        "\n{behind} of {} nodes do not trust every root yet (a node tells at each connection, a connected one within six hours)",
        rows.len()
    );
    Ok(())
}

/// The roots trusted here, and each unrevoked node enrolled here with
/// what it last said of them (since they last changed).
fn status(paths: &HubPaths) -> anyhow::Result<(Vec<Vec<u8>>, Vec<TrustRow>)> {
    let roots = trusted_roots(paths)?;
    let store = Store::open(paths)?;
    let told = store.roots_told()?;
    // a root this hub took after a node last said what it trusts is news to that node
    let since = roots_changed_at(paths);
    let rows: Vec<TrustRow> = store
        .nodes()?
        .into_iter()
        .filter(|n| n.revoked_at.is_none())
        .map(|n| {
            let said = told.iter().find(|(node, _, _)| node == &n.node).filter(|(_, _, at)| *at >= since);
            TrustRow { node: n.node.clone(), missing: said.map(|s| s.1), at: said.map(|s| s.2) }
        })
        .collect();
    Ok((roots, rows))
}

/// When the roots trusted here last changed (the newest of their files).
fn roots_changed_at(paths: &HubPaths) -> i64 {
    [paths.root_cert(), paths.ca_cert(), paths.ca_cross(), paths.ca_previous()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .max()
        .unwrap_or(0)
}

/// How many roots of `mine` the roots a node trusts lack (by name and key).
pub fn missing(theirs: &[Vec<u8>], mine: &[Vec<u8>]) -> usize {
    mine.iter().filter(|m| !theirs.iter().any(|t| trust::same_anchor(t, m))).count()
}
