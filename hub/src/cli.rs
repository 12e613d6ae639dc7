//! The bodies of the `gdx-hub` commands that read or change a hub's data
//! directory and print what they did: `main.rs` parses the arguments and
//! calls these. Errors are one sentence; [`Usage`] marks bad usage (exit 2).

use std::path::{Path, PathBuf};

use anyhow::Context;
use gdx_common::units::{format_time, parse_duration};
use gdx_common::{DivisionCode, NodeId, Role};

use crate::catalog::{self, Catalog, FilterArgs};
use crate::config::HubConfig;
use crate::store::{HubPaths, Store};
use crate::util::now;
use crate::{enrol, init, nodes};

/// Bad usage the argument parser could not catch (an unknown filter value): exit 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `gdx-hub init --join TOKEN`.
pub fn init_join(data: &Path, opts: init::JoinOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let config = rt.block_on(init::init_join(data, &opts, std::time::Duration::from_secs(15)))?;
    println!(
        "created hub {} ({}) in {}, joined to {} at {}\nnodes will dial {}; next: gdx-hub --data {} run",
        config.hub_id(),
        config.name,
        data.display(),
        config.parent.as_ref().map(ToString::to_string).unwrap_or_default(),
        config.parent_addr.as_deref().unwrap_or_default(),
        config.advertise,
        data.display()
    );
    Ok(())
}

/// `gdx-hub init --division CODE --name NAME`.
pub fn init_root(
    data: &Path,
    division: Option<String>,
    name: Option<String>,
    listen: String,
    http: String,
    advertise: Option<String>,
) -> anyhow::Result<()> {
    let division = DivisionCode::parse(division.as_deref().unwrap_or_default())?;
    let opts = init::InitOptions { division, name: name.unwrap_or_default(), listen, advertise, http };
    let config = init::init_root(data, &opts)?;
    println!(
        "created hub {} ({}) in {}\nnodes will dial {}; next: gdx-hub --data {} run",
        config.hub_id(),
        config.name,
        data.display(),
        config.advertise,
        data.display()
    );
    Ok(())
}

/// `gdx-hub issue --ca-key FILE`: issues what waited for the offline CA key.
pub fn issue(paths: &HubPaths, ca_key: &Path) -> anyhow::Result<()> {
    let config = HubConfig::load(paths)?;
    let cert = std::fs::read_to_string(paths.ca_cert())
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", paths.ca_cert().display()))?;
    let ca = gdx_certs::Ca::from_pem(&cert, &gdx_files::read_private(ca_key)?)
        .map_err(|e| anyhow::anyhow!("{} is not the key of {} ({e})", ca_key.display(), paths.ca_cert().display()))?;
    let mut store = Store::open(paths)?;
    let done = enrol::issue_queued(&mut store, &config, &ca, now())?;
    for (node, outcome) in &done {
        match outcome {
            Ok(()) => println!("issued {node}: it gets its certificate when it runs the same `gdx-agent enroll` again"),
            Err(why) => println!("not issued {node}: {why}"),
        }
    }
    if done.is_empty() {
        println!("no enrolment waits for the CA key");
    }
    if !paths.https_cert().exists() {
        crate::api::issue_web_cert(paths, &config, &ca)?;
        println!("issued {}", paths.https_cert().display());
    }
    Ok(())
}

/// `gdx-hub token`: prints a one-time enrolment token.
pub fn token(paths: &HubPaths, node: &str, role: &str, ttl: &str, json: bool) -> anyhow::Result<()> {
    let node = NodeId::parse(node)?;
    let role: Role = role.parse()?;
    let ttl = parse_duration(ttl).map_err(anyhow::Error::msg)?;
    let config = HubConfig::load(paths)?;
    let fingerprint = enrol::Authority::load(paths)?.root_fingerprint();
    let store = Store::open(paths)?;
    let token = enrol::make_token(&store, &config, fingerprint, &node, role, ttl, now())?;
    if json {
        let v = serde_json::json!({
            "token": token.encode(),
            "node": node.to_string(),
            "role": role.as_str(),
            "hub": config.hub_id().to_string(),
            "hub_addr": token.hub_addr,
            "expires_at": token.expires_at,
        });
        println!("{v}");
    } else {
        println!("{}", token.encode());
        let next = match role {
            Role::Agent => "gdx-agent enroll --token <the token above>",
            Role::Hub => "gdx-hub init --join <the token above> --listen … --http …",
        };
        eprintln!(
            "one-time token for {role} {node}, valid until {}; on that machine run: {next}",
            format_time(token.expires_at)
        );
    }
    Ok(())
}

/// `gdx-hub nodes`.
pub fn nodes(paths: &HubPaths, json: bool) -> anyhow::Result<()> {
    let config = HubConfig::load(paths)?;
    let store = Store::open(paths)?;
    let vaults = crate::store::vault::Vaults::for_hub(&paths.dir, &config)?;
    let list = nodes::list(&store, Some(&vaults), now())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if let Some(line) = nodes::parent_line(&config, &store, now())? {
        println!("{line}\n");
    }
    if list.is_empty() {
        println!("no nodes enrolled yet; make a token with: gdx-hub token --node DIVISION/ORG --role agent");
    } else {
        print!("{}", nodes::table(&list));
    }
    for line in nodes::expiring(&list, &paths.hub_cert(), now()) {
        println!("WARNING: {line}");
    }
    Ok(())
}

/// `gdx-hub grants`.
/// `gdx-hub notices`, `checks` and `supervision`.
pub fn supervision(paths: &HubPaths, what: crate::supervision::listing::Listing, json: bool) -> anyhow::Result<()> {
    let config = HubConfig::load(paths)?;
    crate::supervision::listing::print(&paths.dir, config.hub_id(), what, json)
}

pub fn grants(paths: &HubPaths, json: bool) -> anyhow::Result<()> {
    let config = HubConfig::load(paths)?;
    let x = crate::exchange::Exchange::open(&paths.dir, config.hub_id())?;
    let list = x.list(crate::exchange::clock())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!(
            "no requests yet; a department files one with `gdx-agent request --resource CODE --fields … --purpose …`"
        );
    } else {
        print!("{}", crate::exchange::table(&list));
    }
    Ok(())
}

/// `gdx-hub revoke NODE`.
pub fn revoke(paths: &HubPaths, node: &str) -> anyhow::Result<()> {
    let node = NodeId::parse(node)?;
    HubConfig::load(paths)?;
    let store = Store::open(paths)?;
    if !store.knows_node(&node)? {
        let Some(via) = store.remote_via(&node)? else {
            anyhow::bail!(
                "no node {node} is enrolled at this hub or reported by its child hubs; `gdx-hub nodes` lists them"
            );
        };
        if store.revoke_below(&node, now())? {
            println!(
                "revoked {node}, which {via} serves: this hub refuses its certificate now, and {via} refuses it within seconds of its next report"
            );
        } else {
            println!("{node} was already revoked; nothing changed");
        }
        return Ok(());
    }
    let n = store.revoke(&node, now())?;
    if n == 0 {
        println!("{node} was already revoked; nothing changed");
    } else {
        println!(
            "revoked {node} ({n} certificate{}); a running hub refuses its new handshakes now and closes its live connection within seconds",
            if n == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// `gdx-hub catalog list|search` (a search is a list with `q` set).
pub fn catalog_list(paths: &HubPaths, args: FilterArgs, json: bool) -> anyhow::Result<()> {
    let catalog = Catalog::open_as_configured(&paths.dir)?;
    let (filter, at) = args.to_filter(now()).map_err(Usage)?;
    let list = catalog.list(&filter, at)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", catalog::table(&list));
    }
    Ok(())
}

/// `gdx-hub catalog show CODE`.
pub fn catalog_show(paths: &HubPaths, code: &str, as_of: Option<String>, json: bool) -> anyhow::Result<()> {
    let catalog = Catalog::open_as_configured(&paths.dir)?;
    gdx_common::catalog::check_code(code).map_err(Usage)?;
    let args = FilterArgs { as_of, ..FilterArgs::default() };
    let (_, at) = args.to_filter(now()).map_err(Usage)?;
    let Some(entry) = catalog.get(code, at)? else {
        anyhow::bail!("no catalogue entry has the code {code}; `gdx-hub catalog list` shows them");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&entry)?);
    } else {
        println!("{}", catalog::show(&entry));
    }
    Ok(())
}

/// The audit log of the hub at `paths`.
fn audit_log(paths: &HubPaths) -> anyhow::Result<crate::audit::AuditLog> {
    let config = HubConfig::load(paths)?;
    Ok(crate::audit::AuditLog::open(&paths.dir, &config.hub_id().to_string())?)
}

/// `gdx-hub login [--auditor]`: a one-time portal link for the operator or an auditor.
pub fn login(paths: &HubPaths, auditor: bool) -> anyhow::Result<()> {
    let config = HubConfig::load(paths)?;
    let store = Store::open(paths)?;
    let nonce = gdx_common::token::hex(&gdx_certs::pki::random_bytes::<32>());
    let role = if auditor { crate::store::Role::Auditor } else { crate::store::Role::Operator };
    store.add_login(&nonce, role, now() + gdx_common::login::LOGIN_VALIDITY)?;
    println!("{}/login?t=H.{nonce}", portal_base(&config));
    eprintln!(
        "open it in a browser within 10 minutes; it works once and starts {} session",
        if auditor { "a read-only auditor's" } else { "an operator's" }
    );
    Ok(())
}

/// `https://host:port` of this hub's portal: the HTTPS address, or the
/// advertised host when it listens on every address.
pub fn portal_base(config: &HubConfig) -> String {
    let (host, port) = config.http.rsplit_once(':').unwrap_or((config.http.as_str(), "8443"));
    let host = match host.trim_matches(['[', ']']) {
        "0.0.0.0" | "::" | "" => gdx_link::client::addresses(&config.advertise)
            .first()
            .and_then(|a| a.rsplit_once(':'))
            .map_or("127.0.0.1", |(h, _)| h)
            .to_owned(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_owned(),
    };
    format!("https://{host}:{port}")
}

/// bases.toml, after hub.toml: loading hub.toml gives the base files
/// their at-rest key, which every open of them then uses.
fn bases_config(paths: &HubPaths) -> anyhow::Result<crate::base::BasesConfig> {
    HubConfig::load(paths)?;
    crate::base::BasesConfig::load(&paths.dir).map_err(anyhow::Error::msg)
}

/// The base `name` of bases.toml, or why there is none.
fn base_config(paths: &HubPaths, name: &str) -> anyhow::Result<crate::base::BaseConfig> {
    let config = bases_config(paths)?;
    let names: Vec<&str> = config.bases.iter().map(|b| b.name.as_str()).collect();
    config.bases.iter().find(|b| b.name == name).cloned().ok_or_else(|| {
        Usage(format!(
            "bases.toml declares no base {name:?}; it declares {}",
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        ))
        .into()
    })
}

/// A comma-separated list, trimmed, empty items left out.
pub fn split_list(s: &str) -> Vec<String> {
    s.split([',', '，']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()
}

/// `gdx-hub base approve|deny|revoke ID`: the operator decides, for this
/// hub as provider, on a request for one of its shared bases.
pub fn base_decide(paths: &HubPaths, id: &str, verdict: gdx_common::wire::Verdict) -> anyhow::Result<()> {
    let config = HubConfig::load(paths)?;
    let now = crate::exchange::clock();
    let catalog = crate::catalog::Catalog::open(&paths.dir)?;
    let mut exchange = crate::exchange::Exchange::open(&paths.dir, config.hub_id())?;
    let decision = gdx_common::wire::Decision { id: id.to_owned(), verdict };
    let entry = |code: &str| catalog.get(code, now).ok().flatten().map(|l| l.entry);
    let r = exchange.decide(&config.hub_id(), &decision, entry, now)?.map_err(|why| Usage(why.to_string()))?;
    println!("request {} of {} for {} ({}): {}", r.id, r.consumer, r.code, r.columns.join(", "), r.state(now));
    Ok(())
}

/// `gdx-hub base list`.
pub fn base_list(paths: &HubPaths, json: bool) -> anyhow::Result<()> {
    let config = bases_config(paths)?;
    let all: Vec<crate::base::Summary> = config
        .bases
        .iter()
        .map(|b| crate::base::summary(&paths.dir, b))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if all.is_empty() {
        println!("no base databases: declare them in {}/bases.toml (see docs/bases.md)", paths.dir.display());
        return Ok(());
    }
    let mut rows = vec![["NAME", "TITLE", "KEY", "RECORDS", "MEMBERS", "CONFLICTS"].map(str::to_owned).to_vec()];
    for b in &all {
        rows.push(vec![
            b.name.clone(),
            b.title.clone(),
            b.key.clone(),
            b.records.to_string(),
            b.members.len().to_string(),
            b.conflicts.to_string(),
        ]);
    }
    print!("{}", gdx_common::table::render(&rows));
    Ok(())
}

/// `gdx-hub base show NAME`.
pub fn base_show(paths: &HubPaths, name: &str, json: bool) -> anyhow::Result<()> {
    let b = crate::base::summary(&paths.dir, &base_config(paths, name)?).map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&b)?);
        return Ok(());
    }
    println!("{} {}: {} records keyed by {}, {} conflicts", b.name, b.title, b.records, b.key, b.conflicts);
    let mut rows = vec![["MEMBER", "ROWS TAKEN", "LAST MERGED CHANGE"].map(str::to_owned).to_vec()];
    for (m, n, at) in &b.members {
        rows.push(vec![m.clone(), n.to_string(), at.map(format_time).unwrap_or_else(|| "-".into())]);
    }
    print!("{}", gdx_common::table::render(&rows));
    let mut cov = vec![["FIELD", "COVERAGE"].map(str::to_owned).to_vec()];
    for (f, share) in &b.coverage {
        cov.push(vec![f.clone(), format!("{:.1}%", share * 100.0)]);
    }
    print!("{}", gdx_common::table::render(&cov));
    if !b.invalid.is_empty() {
        println!("not merged, {} value(s) not what their field holds:", b.invalid.len());
        let mut bad = vec![["MEMBER", "KEY", "FIELD", "WHY"].map(str::to_owned).to_vec()];
        for (key, field, member, why) in &b.invalid {
            bad.push(vec![member.clone(), key.clone(), field.clone(), why.clone()]);
        }
        print!("{}", gdx_common::table::render(&bad));
    }
    Ok(())
}

/// `gdx-hub base get NAME KEY`: one record with every field's provenance.
pub fn base_get(paths: &HubPaths, name: &str, key: &str, json: bool) -> anyhow::Result<()> {
    let base = base_config(paths, name)?;
    let store = Store::open(paths)?;
    let Some(fields) = crate::base::get(&paths.dir, &base, key, &store, now()).map_err(anyhow::Error::msg)? else {
        anyhow::bail!("base {name} holds no record with key {key}");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&fields)?);
        return Ok(());
    }
    let mut rows = vec![["FIELD", "VALUE", "FROM", "CHANGESET", "AT", "STALE"].map(str::to_owned).to_vec()];
    let short = |v: &str| match v.chars().count() > 60 {
        true => format!("{}…", v.chars().take(59).collect::<String>()),
        false => v.to_owned(),
    };
    for f in &fields {
        rows.push(vec![
            f.field.clone(),
            f.value.as_deref().map(short).unwrap_or_else(|| "-".into()),
            f.from.clone().unwrap_or_else(|| "-".into()),
            f.changeset.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            f.at.map(format_time).unwrap_or_else(|| "-".into()),
            if f.stale { "stale: its department is revoked".into() } else { "-".into() },
        ]);
    }
    print!("{}", gdx_common::table::render(&rows));
    for (f, m) in fields.iter().filter_map(|f| f.measures.as_ref().map(|m| (f, m))) {
        println!("{}: {}", f.field, place_text(m));
    }
    Ok(())
}

/// A measured geometry in one line.
fn place_text(m: &crate::base::Place) -> String {
    format!(
        "area {:.1} m² ({:.4} ha), centroid {:.6} {:.6}, box {},{},{},{}",
        m.area_m2,
        m.area_m2 / 10_000.0,
        m.centroid.0,
        m.centroid.1,
        m.bbox.0,
        m.bbox.1,
        m.bbox.2,
        m.bbox.3
    )
}

/// `gdx-hub base within NAME BOX`: the records of a spatial base whose
/// geometry's box meets BOX.
pub fn base_within(paths: &HubPaths, name: &str, bbox: &str, limit: usize, json: bool) -> anyhow::Result<()> {
    let base = base_config(paths, name)?;
    let b = gdx_common::geometry::BBox::parse(bbox).map_err(Usage)?;
    let (found, more) = crate::base::within(&paths.dir, &base, &b, limit).map_err(Usage)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "records": found, "more": more }))?);
        return Ok(());
    }
    if found.is_empty() {
        println!("no record of {name} lies in {b}");
        return Ok(());
    }
    let mut rows = vec![["KEY", "AREA (m²)", "CENTROID", "BOX"].map(str::to_owned).to_vec()];
    for p in &found {
        rows.push(vec![
            p.key.clone(),
            format!("{:.1}", p.area_m2),
            format!("{:.6} {:.6}", p.centroid.0, p.centroid.1),
            format!("{:.6},{:.6},{:.6},{:.6}", p.bbox.0, p.bbox.1, p.bbox.2, p.bbox.3),
        ]);
    }
    print!("{}", gdx_common::table::render(&rows));
    if more {
        println!("more records lie in the box; narrow it, or raise --limit");
    }
    Ok(())
}

/// `gdx-hub base conflicts NAME`.
pub fn base_conflicts(paths: &HubPaths, name: &str, json: bool) -> anyhow::Result<()> {
    let list = crate::base::conflicts(&paths.dir, &base_config(paths, name)?, 1000).map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("the sources of {name} agree");
        return Ok(());
    }
    let mut rows = vec![["SOURCE A", "SOURCE B", "KEY", "FIELD", "A SAYS", "B SAYS"].map(str::to_owned).to_vec()];
    for c in &list {
        rows.push(vec![c.a.clone(), c.b.clone(), c.key.clone(), c.field.clone(), c.a_value.clone(), c.b_value.clone()]);
    }
    print!("{}", gdx_common::table::render(&rows));
    Ok(())
}

/// `gdx-hub audit list`.
#[allow(clippy::too_many_arguments)]
pub fn audit_list(
    paths: &HubPaths,
    node: Option<String>,
    resource: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    request: Option<String>,
    format: &str,
) -> anyhow::Result<()> {
    let open = || audit_log(paths);
    let day = |d: Option<String>, end: bool| -> anyhow::Result<Option<i64>> {
        d.map(|d| {
            gdx_common::units::parse_date(&d)
                .map(|day| (day + i64::from(end)) * 86_400)
                .map_err(|e| anyhow::Error::new(Usage(e)))
        })
        .transpose()
    };
    if let Some(k) = kind.as_deref().filter(|k| !crate::audit::KINDS.contains(k)) {
        return Err(
            Usage(format!("--kind {k:?} is not an entry kind; use one of {}", crate::audit::KINDS.join(", "))).into()
        );
    }
    let filter =
        crate::audit::Filter { node, resource, kind, since: day(since, false)?, until: day(until, true)?, request };
    let entries = open()?.list(&filter)?;
    let text = crate::audit::render(&entries, format).map_err(|e| anyhow::Error::new(Usage(e)))?;
    print!("{text}");
    Ok(())
}

/// `gdx-hub audit verify [--bundle FILE] [--key HEX] [--parent-key HEX]`: an
/// offline bundle needs no hub directory. Keys are 64 lowercase hex digits;
/// anything else is bad usage.
pub fn audit_verify(
    paths: &HubPaths,
    bundle: Option<PathBuf>,
    key: Option<String>,
    parent_key: Option<String>,
) -> anyhow::Result<()> {
    let pin = |flag: &str, k: Option<String>| -> anyhow::Result<Option<crate::audit::PublicKey>> {
        k.map(|k| crate::audit::PublicKey::parse(&k).map_err(|e| Usage(format!("{flag}: {e}")).into())).transpose()
    };
    let pins = crate::audit::Pins { key: pin("--key", key)?, parent_key: pin("--parent-key", parent_key)? };
    let (b, what) = match bundle {
        Some(path) => {
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("cannot read the bundle {}", path.display()))?;
            let b: crate::audit::Bundle = serde_json::from_str(&text).with_context(|| {
                format!("{} is not an audit bundle written by `gdx-hub audit export`", path.display())
            })?;
            (b, path.display().to_string())
        }
        None => {
            let b = audit_log(paths)?.bundle()?;
            let what = format!("the audit log of {}", b.origin);
            (b, what)
        }
    };
    match crate::audit::verify(&b, &pins) {
        Ok(v) => println!("{}", v.summary(&what)),
        Err(problem) => anyhow::bail!("{what} does not verify: {problem}"),
    }
    Ok(())
}

/// `gdx-hub audit prove ENTRY`.
pub fn audit_prove(paths: &HubPaths, entry: u64) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&audit_log(paths)?.prove(entry)?)?);
    Ok(())
}

/// `gdx-hub audit export FILE`.
pub fn audit_export(paths: &HubPaths, out: &Path) -> anyhow::Result<()> {
    let open = || audit_log(paths);
    let b = open()?.bundle()?;
    std::fs::write(out, serde_json::to_vec(&b)?).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {} entries and {} checkpoints of {} to {}; verify anywhere with `gdx-hub audit verify --bundle {}`",
        b.entries.len(),
        b.checkpoints.len(),
        b.origin,
        out.display(),
        out.display()
    );
    Ok(())
}

/// `gdx-hub pair`: the second process's data directory, and what to do with it.
pub fn pair(paths: &HubPaths, to: &Path, listen: &str, http: &str, advertise: Option<&str>) -> anyhow::Result<()> {
    let p = crate::pair::pair(paths, to, listen, http, advertise).map_err(anyhow::Error::msg)?;
    println!(
        "{} is the data directory of a second process of this hub; both advertise {}.",
        p.dir.display(),
        p.advertise
    );
    for f in &p.outside {
        println!("copy {} to the same path on the second machine (keep it 0600)", f.display());
    }
    println!(
        "Move {} to the second machine (it holds the hub's keys; delete this copy after), restart this hub, \
         and start `gdx-hub run` there. Nodes enrolled before now dial only this hub's address: \
         add the second to hub_addr in their agent.toml, after upgrading them to this version.",
        p.dir.display()
    );
    Ok(())
}

/// `gdx-hub migrate --to postgres`: each store moved, or found moved already.
pub fn migrate(paths: &HubPaths) -> anyhow::Result<()> {
    let done = crate::store::db::migrate::to_postgres(paths, crate::util::now()).map_err(anyhow::Error::msg)?;
    if done.is_empty() {
        println!("nothing to move: every store is on PostgreSQL already");
    }
    for (which, m) in done {
        let rows: u64 = m.tables.iter().map(|t| t.1).sum();
        let how = if m.copied { "moved" } else { "already in PostgreSQL, verified" };
        println!(
            "{}: {how}: {} tables, {rows} rows, the same on both sides; the file is kept as {}",
            which,
            m.tables.len(),
            m.set_aside.display()
        );
    }
    Ok(())
}
