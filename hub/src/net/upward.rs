//! What a child hub keeps current over its link to the parent, at each
//! connection and about hourly: the roots it trusts (a root rollover,
//! [`gdx_link::roots`]), its intermediate CA (renewed by the parent past
//! two thirds of its life, or once the province issues under a new root:
//! [`crate::rollover`]) and its own certificate ([`gdx_link::renew`]).
//! Each is switched on disk whole (a kill leaves the old files or the new),
//! and the running hub takes the new files within seconds
//! (`super::credentials`). A failure is logged and tried again next time;
//! what is in force serves on.

use gdx_certs::pki::{self, Identity, pem_blocks};
use gdx_certs::trust;
use gdx_common::wire::{Message, OBSERVATIONS_AND_RENEWAL, RenewCaRequest};
use gdx_link::frames;
use rustls::pki_types::CertificateDer;
use tracing::{info, warn};

use crate::config::HubConfig;
use crate::store::HubPaths;
use crate::util::now;

const PARENT: &str = "the parent hub";

/// The roots this hub trusts (`root.crt`).
pub(super) fn read_roots(paths: &HubPaths) -> Result<Vec<CertificateDer<'static>>, String> {
    let roots = crate::rollover::read_optional(&paths.root_cert()).map_err(|e| format!("{e:#}"))?;
    if roots.is_empty() {
        return Err("root.crt holds no certificate".into());
    }
    Ok(roots.into_iter().map(CertificateDer::from).collect())
}

/// Takes the parent's roots, then renews the intermediate CA and this
/// hub's certificate when due.
pub(super) async fn credentials_pass(conn: &quinn::Connection, paths: &HubPaths, config: &HubConfig) {
    let issuing = match take_roots(conn, paths).await {
        Ok(issuing) => issuing,
        Err(e) => {
            warn!(error = %e, "the parent hub's roots could not be taken; asked again later");
            None
        }
    };
    if let Some(issuing) = issuing
        && let Err(e) = renew_ca(conn, paths, config, &issuing).await
    {
        warn!(error = %e, "this hub's intermediate CA could not be renewed; asked again later");
    }
    if let Err(e) = renew_own(conn, paths, config).await {
        warn!(error = %e, "this hub's certificate could not be renewed; asked again later");
    }
}

/// Adds to `root.crt` the roots the parent offers that one trusted here
/// vouches for; returns the root the parent issues under (the first it
/// offered), if it offered any.
async fn take_roots(conn: &quinn::Connection, paths: &HubPaths) -> Result<Option<Vec<u8>>, String> {
    let trusted: Vec<Vec<u8>> = read_roots(paths)?.into_iter().map(|r| r.to_vec()).collect();
    let (offered, taken) = gdx_link::roots::refresh(conn, &trusted, now(), PARENT).await?;
    if !taken.is_empty() {
        let all: Vec<Vec<u8>> = trusted.into_iter().chain(taken.iter().cloned()).collect();
        gdx_files::replace(&paths.root_cert(), trust::write(&all).as_bytes(), false)
            .map_err(|e| format!("cannot write root.crt: {e}"))?;
        info!(roots = taken.len(), "took the new root the parent hub trusts (a root rollover)");
    }
    Ok(offered.into_iter().next())
}

/// Renews the intermediate CA (`ca.crt`, `ca.key`) when due under
/// `issuing`; only with `ca.key` in place, so that a key kept offline is
/// never replaced by one made on this machine.
async fn renew_ca(
    conn: &quinn::Connection,
    paths: &HubPaths,
    config: &HubConfig,
    issuing: &[u8],
) -> Result<(), String> {
    let text = std::fs::read_to_string(paths.ca_cert()).map_err(|e| format!("cannot read ca.crt: {e}"))?;
    let Some(current) = pem_blocks(&text, "CERTIFICATE").into_iter().next() else {
        return Err("ca.crt holds no certificate".into());
    };
    let pending = gdx_link::renew::pending_path(&paths.ca_key());
    if !crate::rollover::intermediate_due(&current, issuing, now()) {
        // what a renewal finished before a kill left behind
        let _ = std::fs::remove_file(&pending);
        return Ok(());
    }
    if !paths.ca_key().exists() {
        return Err("the intermediate CA is due for renewal and ca.key is kept offline: put it back (0600) until the next connection to the province".into());
    }
    if frames::protocol(conn) < OBSERVATIONS_AND_RENEWAL {
        return Err(format!(
            "{PARENT} speaks gdx protocol 1, which cannot renew an intermediate CA; it renews once {PARENT} is upgraded"
        ));
    }
    let division = config.division;
    let key = gdx_link::renew::pending_key(&pending)?;
    let csr_der = pki::make_ca_csr(&key, &format!("GDX CA {division}")).map_err(|e| e.to_string())?;
    let request = Message::RenewCa(RenewCaRequest { csr_der, current_der: current.clone() });
    let answer = frames::ask(conn, &request, std::time::Duration::from_secs(60), PARENT).await?;
    let Message::Renewed(renewed) = answer else {
        return Err(format!("{PARENT} answered the renewal of the intermediate CA with {}", answer.kind()));
    };
    let Some(new) = renewed.chain_der.first() else { return Err(format!("{PARENT} sent no certificate")) };
    let roots = read_roots(paths)?;
    let ours = matches!(Identity::of(new), Ok(Identity::Ca { division: d, .. }) if d == division);
    if !ours || !pki::key_matches(&key, new) || !roots.iter().any(|r| trust::issued_by(new, r)) {
        return Err(format!(
            "{PARENT} renewed another CA, another key, or under a root not trusted here; the current CA is kept"
        ));
    }
    // the old intermediate first: certificates issued under it stay this hub's own
    crate::rollover::append(&paths.ca_previous(), &current).map_err(|e| format!("{e:#}"))?;
    gdx_files::pair::switch(
        &paths.ca_key(),
        &key.serialize_pem(),
        &paths.ca_cert(),
        &pki::der_to_pem(new, "CERTIFICATE"),
    )
    .map_err(|e| format!("cannot write the renewed intermediate CA: {e}"))?;
    let _ = std::fs::remove_file(&pending);
    let until = trust::validity(new).map_or(0, |(_, to)| to);
    info!(until = %gdx_common::units::format_date(until), "this hub's intermediate CA renewed by the parent hub");
    Ok(())
}

/// Renews hub.crt and hub.key when due; the running hub's listener and
/// signer take the new pair within seconds, the next connection to the
/// parent uses it (the old certificate stays valid until it ends).
async fn renew_own(conn: &quinn::Connection, paths: &HubPaths, config: &HubConfig) -> Result<(), String> {
    let pem = std::fs::read_to_string(paths.hub_cert()).map_err(|e| format!("cannot read hub.crt: {e}"))?;
    let Some(current) = pem_blocks(&pem, "CERTIFICATE").into_iter().next() else {
        return Err("hub.crt holds no certificate".into());
    };
    let roots = read_roots(paths)?;
    let pending = gdx_link::renew::pending_path(&paths.hub_key());
    if let Some(r) = gdx_link::renew::if_due(conn, &config.hub_id(), &current, &roots, &pending, now(), PARENT).await? {
        // as at the join, the hub's chain ends with the root, which enrolling agents pin
        let chain_pem = r.chain_pem + &pki::der_to_pem(&roots[0], "CERTIFICATE");
        gdx_files::pair::switch(&paths.hub_key(), &r.key.serialize_pem(), &paths.hub_cert(), &chain_pem)
            .map_err(|e| format!("cannot write the renewed certificate: {e}"))?;
        let _ = std::fs::remove_file(&pending);
        info!(until = %gdx_common::units::format_date(r.not_after), "this hub's certificate renewed by the parent hub");
    }
    Ok(())
}
