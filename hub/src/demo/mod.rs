//! `gdx-hub demo`: a small Qinghai on this machine.
//!
//! Creates a province hub in a fresh directory under the system temp dir,
//! starts it as a child process, enrols twenty departments' agents at
//! province, prefecture and county level with real tokens and the real
//! `gdx-agent` binary (found next to `gdx-hub`), gives each generated data
//! that obeys the standards and a catalogue entry for each resource (the
//! five base resources and a dozen department ones), starts them, waits
//! until every resource is synced and catalogued, prints where to look, and
//! runs until Ctrl-C, when it stops its children and removes its files
//! (unless `--dir` named where to keep them). Every capability added later
//! extends it.
//!
//! Three departments keep their tables in real database servers the demo
//! starts, two in PostgreSQL and one in MariaDB (SQLite when those are not
//! installed).
//!
//! `departments` holds who is enrolled and what each publishes (data);
//! `sources` writes each department's sample sources and agent.toml;
//! `databases` runs the PostgreSQL and MariaDB servers.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_common::creditcode::CreditCode;
use gdx_common::generate::{Enterprise, Generator, Person};
use gdx_common::{DivisionCode, NodeId, Role};

use gdx_hub::catalog::{self, Catalog, Filter};
use gdx_hub::store::HubPaths;
use gdx_hub::store::Store;
use gdx_hub::store::vault::Vaults;
use gdx_hub::util::now;
use gdx_hub::{enrol, init, nodes};

mod databases;
mod departments;
mod history;
mod items;
mod sources;
mod supervision;

use departments::Province;
use sources::sample_data;

/// The demo's base databases, each shared as a resource of the province:
/// the population base from 公安's household register (the authority),
/// 民政's 低保 list and 卫健's health records (filling in); the legal-person base from the three
/// registers (市场监管's enterprises, 民政's social organisations, 编办's
/// public institutions); the spatial base of 西宁's land parcels.
/// `{PROVIDER_CODE}` is the platform's 统一社会信用代码.
const BASES: &str = include_str!("bases.toml");

/// Runs the demo until `shutdown` completes.
/// `seed` chooses the generated people and enterprises: the same seed gives
/// the same data.
pub async fn run(
    keep: Option<std::path::PathBuf>,
    seed: u64,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let hub_exe = std::env::current_exe().context("cannot find the gdx-hub executable")?;
    let agent_exe = hub_exe.with_file_name("gdx-agent");
    if !agent_exe.exists() {
        anyhow::bail!(
            "gdx-agent was not found next to gdx-hub ({}); install both binaries in the same directory",
            agent_exe.display()
        );
    }
    let root = match &keep {
        Some(dir) => {
            if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
                anyhow::bail!("{} is not empty; give --dir a new or empty directory", dir.display());
            }
            dir.clone()
        }
        None => std::env::temp_dir().join(format!("gdx-demo-{}", now())),
    };
    let province = Province::load()?;
    // removes the demo's files when it ends, however it ends, unless --dir keeps them
    let _cleanup = Cleanup { dir: keep.is_none().then(|| root.clone()) };
    // others may pass through (not list) the demo's directory: the database
    // servers run as their own users in it; everything else in it is private
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o711)
        .create(&root)
        .with_context(|| format!("cannot create {}", root.display()))?;
    let hub_dir = root.join("hub-630000");
    let quic = format!("127.0.0.1:{}", free_port()?);
    let http = format!("127.0.0.1:{}", free_port()?);
    let config = init::init_root(
        &hub_dir,
        &init::InitOptions {
            division: DivisionCode::parse("630000")?,
            name: "青海省政务数据共享交换平台".into(),
            listen: quic.clone(),
            advertise: None,
            http: http.clone(),
        },
    )?;
    println!("GDX demo in {}", root.display());
    println!("province hub {} ({}) on {quic}/udp", config.hub_id(), config.name);
    // the base databases, merged at the province and shared as its resources
    let platform_code = CreditCode::compose("11630000", "01560005")?;
    std::fs::write(hub_dir.join("bases.toml"), BASES.replace("{PROVIDER_CODE}", platform_code.as_str()))?;
    std::fs::write(hub_dir.join("supervision.toml"), supervision::SUPERVISION_TOML)?;
    let mut children = Vec::new();
    children.push(spawn(&hub_exe, &hub_dir, &["run"])?);
    wait_for(Duration::from_secs(20), "the hub to listen", || {
        std::fs::read_to_string(hub_dir.join("run.log")).is_ok_and(|l| l.contains("listening on"))
    })
    .await?;

    let paths = HubPaths::new(&hub_dir);
    // Every hub of the tree pins the province's root in its tokens.
    let root_fingerprint = enrol::Authority::load(&paths)?.root_fingerprint();
    // The prefecture hubs join the province with real tokens.
    let mut hubs: Vec<(HubPaths, gdx_hub::HubConfig)> = vec![(paths.clone(), config.clone())];
    for prefecture in &province.prefectures {
        let token = {
            let store = Store::open(&paths)?;
            enrol::make_token(
                &store,
                &config,
                root_fingerprint,
                &NodeId::parse(&format!("{prefecture}/hub"))?,
                Role::Hub,
                3600,
                now(),
            )?
        };
        let dir = root.join(format!("hub-{prefecture}"));
        let opts = init::JoinOptions {
            token: token.encode(),
            name: None,
            listen: format!("127.0.0.1:{}", free_port()?),
            advertise: None,
            http: format!("127.0.0.1:{}", free_port()?),
        };
        let child = init::init_join(&dir, &opts, Duration::from_secs(15)).await?;
        std::fs::write(dir.join("supervision.toml"), supervision::SUPERVISION_TOML)?;
        println!("prefecture hub {} ({}) joined the province, on {}/udp", child.hub_id(), child.name, child.listen);
        children.push(spawn(&hub_exe, &dir, &["run"])?);
        wait_for(Duration::from_secs(20), "the prefecture hub to listen", || {
            std::fs::read_to_string(dir.join("run.log")).is_ok_and(|l| l.contains("listening on"))
        })
        .await?;
        hubs.push((HubPaths::new(&dir), child));
    }
    // dropped (servers stopped) after the children, which are stopped first below
    let databases = databases::Databases::start(&root.join("databases"), &province);
    // 公安's people, some of whom 民政's 低保 list names too
    let mut registers = sources::Registers::default();
    for (n, dept) in province.departments.iter().enumerate() {
        let node_id = NodeId::parse(&dept.node)?;
        // a department attaches to the hub of its prefecture, if the demo runs one
        let (hub_paths, hub_config) =
            hubs.iter().rev().find(|(_, c)| c.division.contains(node_id.division())).unwrap_or(&hubs[0]);
        let token = {
            let store = Store::open(hub_paths)?;
            enrol::make_token(&store, hub_config, root_fingerprint, &node_id, Role::Agent, 3600, now())?
        };
        let dir = root.join(format!("agent-{}", dept.node.replace('/', "-")));
        let status = tokio::process::Command::new(&agent_exe)
            .arg("--data")
            .arg(&dir)
            .args(["enroll", "--token", &token.encode()])
            .stdout(Stdio::null())
            .status()
            .await?;
        if !status.success() {
            anyhow::bail!("the demo could not enrol {}; see the error above", dept.node);
        }
        // `gdx-agent login` links to the portal of the hub it attaches to
        let config_path = dir.join("agent.toml");
        let text = std::fs::read_to_string(&config_path)?;
        let portal = format!("portal = \"{}\"", gdx_hub::cli::portal_base(hub_config));
        std::fs::write(&config_path, text.replacen("# portal = \"https://10.63.0.1:8443\"", &portal, 1))?;
        // each department draws from a stream of its own
        sample_data(&dir, dept, seed.wrapping_add(n as u64), &databases, &mut registers)?;
        let names: Vec<String> = dept.resources.iter().map(|r| format!("{} ({})", r.code, r.name)).collect();
        let from = databases.engine_of(dept).map(|e| format!(" from {e}")).unwrap_or_default();
        println!(
            "enrolled {} {} ({}) at {}: publishes {}{from}",
            dept.node,
            dept.name,
            node_id.division().name(),
            hub_config.hub_id(),
            names.join(", ")
        );
        children.push(spawn(&agent_exe, &dir, &["run"])?);
    }

    let store = Store::open(&paths)?;
    // The province sees the agents below the prefecture hubs through their reports.
    let connected = || {
        nodes::list(&store, None, now())
            .map(|l| l.iter().filter(|n| n.row.role == "agent" && n.state == "connected").count())
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(90), "the agents to connect", || connected() == province.departments.len()).await?;
    println!(
        "\n{} of {} agents connected (the province sees the whole tree):\n",
        connected(),
        province.departments.len()
    );
    // every resource is in the vault of the hub its department attaches to
    let synced = || {
        hubs.iter()
            .map(|(p, _)| {
                Store::open(p)
                    .and_then(|s| nodes::list(&s, Some(&Vaults::new(&p.dir)), now()))
                    .map(|l| l.iter().filter(|n| n.via.is_none()).map(|n| n.resources.len()).sum::<usize>())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    wait_for(Duration::from_secs(90), "the first sync of every resource", || synced() >= province.resource_count())
        .await?;
    let vaults = Vaults::new(&hub_dir);
    let catalog = Catalog::open(&hub_dir)?;
    // the departments' entries (the province's base databases are catalogued at its start)
    let entries =
        || catalog.list(&Filter::default(), now()).map(|l| l.iter().filter(|e| !e.entry.provider.is_hub_id()).count());
    wait_for(Duration::from_secs(60), "every catalogue entry at the province", || {
        entries().is_ok_and(|n| n == province.resource_count())
    })
    .await?;
    // and the prefecture hubs have forwarded the base resources' data
    let forwarded = || {
        let base = Filter { class: Some(gdx_common::catalog::CatalogClass::Base), ..Filter::default() };
        catalog.list(&base, now()).is_ok_and(|l| {
            // the province's own base databases have no vault: they are merged here
            l.iter()
                .filter(|e| !e.entry.provider.is_hub_id())
                .all(|e| vaults.summaries(&e.entry.provider).iter().any(|s| s.resource == e.entry.resource.as_str()))
        })
    };
    wait_for(Duration::from_secs(60), "the prefecture hubs to forward the base data", forwarded).await?;
    print!("{}", nodes::table(&nodes::list(&store, Some(&vaults), now())?));
    println!(
        "\nThe province's catalogue (seven base resources of departments and the province's three base databases, the rest from departments at three levels; the prefecture hubs forwarded theirs, with the base resources' data):\n"
    );
    print!("{}", catalog::table(&catalog.list(&Filter::default(), now())?));
    exchange_demo(&agent_exe, &root).await?;
    supervision::supervision_demo(&agent_exe, &root).await?;
    items::items_demo(&root).await?;
    let past = history::write(&root, &province, seed, now())?;
    println!(
        "\n考核: {past} events of the two months before this one were added to the hubs' audit logs, each marked \"demo_history\", so that the ranking and trends have a past (gdx-hub report --period …, the portal's 考核)."
    );
    portal_links(&agent_exe, &root, &config).await?;
    let hub = hub_dir.display();
    let pref = root.join("hub-632500");
    let pref = pref.display();
    let gongan = root.join("agent-630000-gongan");
    let minzheng = root.join("agent-630000-minzheng");
    let in_four_days = gdx_common::units::format_date(now() + 4 * 86_400);
    let month = gdx_common::units::format_date(now()).get(..7).unwrap_or_default().to_owned();
    let consumer = root.join("agent-632522-minzheng");
    let consumer = consumer.display();
    println!(
        "\nWhere to look (in another terminal):\n\
         \x20 gdx-hub --data {hub} nodes                     the whole tree: hubs, agents, state, backlog\n\
         \x20 gdx-hub --data {pref} catalog list            the province's catalogue, flowed down to 海南州\n\
         \x20 sqlite3 {hub}/vaults/630100-zrgh.db 'SELECT count(*) FROM zongdi'   base data forwarded by 西宁 (department data stays there)\n\
         \x20 gdx-hub --data {hub} catalog search 人口       search the catalogue in Chinese\n\
         \x20 gdx-hub --data {hub} catalog list --sharing conditional --division 632500   conditional entries of 海南州\n\
         \x20 gdx-hub --data {hub} catalog show 301001/000001   one entry in full\n\
         \x20 gdx-hub --data {hub} catalog list --overdue --as-of {in_four_days}   what is overdue in four days\n\
         \x20 curl --cacert {hub}/ca.crt -G https://{http}/api/v1/catalog --data-urlencode q=法人   (entries open to the public only)\n\
         \x20 gdx-agent --data {} status          one agent's view, with its catalogue entry\n\
         \x20 gdx-agent --data {} status          the 民政 agent's quarantine (two bad CSV lines)\n\
         \x20 gdx-hub --data {hub} grants                    requests and grants of the whole province\n\
         \x20 gdx-hub --data {hub} notices                   双告知 notices: to whom, claimed, passed on, OVERDUE\n\
         \x20 gdx-hub --data {hub} supervision               per department: notices claimed in time, checks with feedback\n\
         \x20 gdx-hub --data {hub} items consistency         the 权责清单 compared across levels (--out report.xlsx for Excel/WPS)\n\
         \x20 gdx-hub --data {hub} report --period {month}          考核: every department's indicators, score and rank (--out report.pdf|.xlsx|.html)\n\
         \x20 gdx-hub --data {hub} enterprise CREDIT_CODE    one enterprise's profile: register, 双公示, dishonest list\n\
         \x20 gdx-hub --data {hub} base show renkou          the population base: 公安 + 民政 + 卫健, coverage per field\n\
         \x20 gdx-hub --data {hub} base conflicts renkou     where 公安 and 民政 disagree (a name written two ways)\n\
         \x20 gdx-hub --data {hub} base show faren           the legal-person base: 市场监管 + 民政 + 编办\n\
         \x20 gdx-hub --data {hub} base within kongjian 101.70,36.55,101.85,36.70   西宁's parcels in a box, area and centroid\n\
         \x20 gdx-agent --data {consumer} request --resource 103001/900001 --fields 宗地代码,宗地界址,坐落 --purpose 选址\n\
         \x20 gdx-agent --data {consumer} within --resource 103001/900001 101.70,36.55,101.85,36.70   the same under the grant\n\
         \x20 gdx-hub --data {hub} nodes                     QUARANTINED: 公安's two bad rows (a bad check character, 1990-02-30)\n\
         \x20 gdx-hub --data {pref} audit list --kind request   the audit log: who asked for what (also decision, delivered, lookup…)\n\
         \x20 gdx-hub --data {pref} audit verify            re-hash the log, check its checkpoints and the province's cosignatures\n\
         \x20 gdx-agent --data {consumer} requests   the 同德 民政 department's requests\n\
         \x20 gdx-agent --data {consumer} lookup --resource 101001/000001 ID_NUMBER   one record under a grant\n\
         \x20 sqlite3 {consumer}/received.db .tables   what 同德 民政 received\n\
         \x20 gdx-hub --data {hub} revoke 630000/gongan   watch that agent get cut off\n\
         \x20 sqlite3 {hub}/vaults/630000-gongan.db 'SELECT * FROM hukou LIMIT 5'\n\
         \x20 edit {}/source/data.db or drop a CSV into {}/drop: the change reaches the vault\n\
         {}\
         \x20 logs: {}/*/run.log\n\n\
         Press Ctrl-C to stop the demo; {}.",
        gongan.display(),
        minzheng.display(),
        gongan.display(),
        minzheng.display(),
        databases.hints(&province),
        root.display(),
        match keep {
            Some(_) => format!("its files stay in {}", root.display()),
            None => format!("it then removes {} (run it with --dir DIR to keep its files)", root.display()),
        }
    );
    shutdown.await;
    println!("stopping the demo");
    for mut child in children {
        stop(&mut child).await;
    }
    Ok(())
}

/// Controlled exchange across prefectures: 同德县民政局 (below 海南州) asks
/// 西宁市卫健委 for birth certificates (有条件共享), which approves fewer
/// fields, and the province's population base (无条件共享, granted at once);
/// the rows arrive in its received database, the mothers' ID numbers masked.
async fn exchange_demo(agent_exe: &Path, root: &Path) -> anyhow::Result<()> {
    use gdx_common::grant::RequestRecord;
    let consumer = root.join("agent-632522-minzheng");
    let provider = root.join("agent-630100-weijian");
    println!("\nControlled exchange: 同德县民政局 (海南州) asks 西宁市卫生健康委员会 for birth certificates:\n");
    let out = agent(
        agent_exe,
        &consumer,
        &[
            "request",
            "--resource",
            "202001/000001",
            "--fields",
            "出生医学证明编号,新生儿姓名,出生日期,母亲证件号码",
            "--purpose",
            "新生儿家庭社会救助资格比对",
            "--json",
        ],
    )
    .await?;
    let filed: RequestRecord = serde_json::from_str(&out).context("the request's answer is not a request record")?;
    println!(
        "  gdx-agent request --resource 202001/000001 --fields 出生医学证明编号,新生儿姓名,出生日期,母亲证件号码 --purpose …\n  → request {} is {} (有条件共享: 西宁 must answer by {})",
        filed.id,
        filed.state(now()),
        match filed.status {
            gdx_common::grant::Status::Pending { answer_by_day } =>
                gdx_common::units::format_date(answer_by_day * 86_400),
            _ => "-".into(),
        }
    );
    let xining = root.join("hub-630100");
    let at_xining = || {
        gdx_hub::exchange::Exchange::open(&xining, NodeId::parse("630100/hub").expect("a valid id"))
            .and_then(|x| x.record(&filed.id))
            .is_ok_and(|r| r.is_some())
    };
    wait_for(Duration::from_secs(60), "the request to reach 西宁 through the province", at_xining).await?;
    let approved =
        agent(agent_exe, &provider, &["approve", &filed.id, "--fields", "出生医学证明编号,出生日期,母亲证件号码"])
            .await?;
    println!(
        "  西宁市卫健委: gdx-agent approve {} --fields 出生医学证明编号,出生日期,母亲证件号码\n  → {}",
        filed.id,
        approved.trim()
    );
    let free = agent(
        agent_exe,
        &consumer,
        &["request", "--resource", "101001/000001", "--fields", "姓名,民族", "--purpose", "特困人员身份核验"],
    )
    .await?;
    println!(
        "  gdx-agent request --resource 101001/000001 --fields 姓名,民族 --purpose 特困人员身份核验\n  → {}",
        free.trim().replace('\n', "\n    ")
    );
    let received = consumer.join("received.db");
    let count = |table: &str| -> i64 {
        rusqlite::Connection::open_with_flags(&received, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0)))
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(60), "the granted rows to arrive at 同德县民政局", || {
        count("weijian_chusheng_630100") > 0 && count("gongan_hukou_630000") > 0
    })
    .await?;
    let c = rusqlite::Connection::open_with_flags(&received, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt =
        c.prepare("SELECT cert_no, born, mother_id FROM weijian_chusheng_630100 ORDER BY cert_no LIMIT 3")?;
    let sample: Vec<(String, String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    println!(
        "\n  delivered to 同德县民政局 ({} birth certificates, {} residents), e.g. weijian_chusheng_630100:",
        count("weijian_chusheng_630100"),
        count("gongan_hukou_630000")
    );
    for (no, born, mother) in sample {
        println!("    {no}  {born}  {mother}");
    }
    println!(
        "  (新生儿姓名 was not approved and never left 西宁; 母亲证件号码 is sensitive and arrives masked; the residents' ID numbers were not asked for, so their rows arrive keyed by a pseudonym)\n"
    );
    let province = gdx_hub::exchange::Exchange::open(&root.join("hub-630000"), NodeId::parse("630000/hub")?)?;
    // the consumer's hub reports how far delivery got; give it a few seconds to reach the province
    let reported = || province.list(now()).is_ok_and(|l| l.iter().all(|g| g.rows_delivered > 0));
    let _ = wait_for(Duration::from_secs(15), "delivery progress at the province", reported).await;
    print!("{}", gdx_hub::exchange::table(&province.list(now())?));
    Ok(())
}

/// Prints one-time portal links: the province's operator and an auditor,
/// the consumer of the exchange above (at 海南州's portal) and its provider
/// (at 西宁's).
async fn portal_links(agent_exe: &Path, root: &Path, province: &gdx_hub::HubConfig) -> anyhow::Result<()> {
    let hub_dir = root.join("hub-630000");
    let paths = HubPaths::new(&hub_dir);
    let store = Store::open(&paths)?;
    let link = |role: gdx_hub::store::Role| -> anyhow::Result<String> {
        let nonce = gdx_common::token::hex(&gdx_certs::pki::random_bytes::<32>());
        store.add_login(&nonce, role, now() + gdx_common::login::LOGIN_VALIDITY)?;
        Ok(format!("{}/login?t=H.{nonce}", gdx_hub::cli::portal_base(province)))
    };
    let operator = link(gdx_hub::store::Role::Operator)?;
    let auditor = link(gdx_hub::store::Role::Auditor)?;
    let consumer = root.join("agent-632522-minzheng");
    let provider = root.join("agent-630100-weijian");
    let consumer_link = agent(agent_exe, &consumer, &["login"]).await?;
    let provider_link = agent(agent_exe, &provider, &["login"]).await?;
    println!(
        "\nThe portal, in a browser (each link works once, within 10 minutes; the hubs' certificates are issued by the demo's own CA, so the browser warns first):\n\
         \x20 province operator (tree, audit, charts): {operator}\n\
         \x20 auditor (read-only):                     {auditor}\n\
         \x20 同德县民政局 (its requests and grants):  {}\n\
         \x20 西宁市卫健委 (decides the requests):     {}\n\
         \x20 new links: gdx-hub --data {} login [--auditor], gdx-agent --data DIR login",
        consumer_link.trim(),
        provider_link.trim(),
        hub_dir.display()
    );
    Ok(())
}

/// Runs `gdx-agent --data DIR ARGS…` and returns its output, or its error.
async fn agent(exe: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(exe).arg("--data").arg(dir).args(args).output().await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        anyhow::bail!(
            "the demo's `gdx-agent {}` failed: {}{}",
            args.first().unwrap_or(&""),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

fn spawn(exe: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(dir.join("run.log"))?;
    Ok(tokio::process::Command::new(exe)
        .arg("--data")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

/// Removes a directory when dropped.
struct Cleanup {
    dir: Option<std::path::PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            anyhow::bail!("the demo gave up waiting for {what} after {} s; see the run.log files", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}
