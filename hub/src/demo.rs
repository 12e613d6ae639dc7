//! `gdx-hub demo`: a small Qinghai on this machine.
//!
//! Creates a province hub in a fresh directory under the system temp dir,
//! starts it as a child process, enrols two province departments' agents
//! with real tokens and the real `gdx-agent` binary (found next to
//! `gdx-hub`), starts them, waits until the hub sees both connected, prints
//! where to look, and runs until Ctrl-C, when it stops its children. The
//! files are kept for inspection. Every capability added later extends it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_common::{DivisionCode, NodeId, Role};

use crate::config::HubPaths;
use crate::store::Store;
use crate::util::now;
use crate::{enrol, init, nodes};

/// The departments the demo enrols: node id and name.
const AGENTS: &[(&str, &str)] = &[("630000/gongan", "青海省公安厅"), ("630000/minzheng", "青海省民政厅")];

/// Runs the demo until `shutdown` completes.
pub async fn run(shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let hub_exe = std::env::current_exe().context("cannot find the gdx-hub executable")?;
    let agent_exe = hub_exe.with_file_name("gdx-agent");
    if !agent_exe.exists() {
        anyhow::bail!(
            "gdx-agent was not found next to gdx-hub ({}); install both binaries in the same directory",
            agent_exe.display()
        );
    }
    let root = std::env::temp_dir().join(format!("gdx-demo-{}", now()));
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
            http,
        },
    )?;
    println!("GDX demo in {}", root.display());
    println!("province hub {} ({}) on {quic}/udp", config.hub_id(), config.name);
    let mut children = Vec::new();
    children.push(spawn(&hub_exe, &hub_dir, &["run"])?);
    wait_for(Duration::from_secs(20), "the hub to listen", || {
        std::fs::read_to_string(hub_dir.join("run.log")).is_ok_and(|l| l.contains("listening on"))
    })
    .await?;

    let paths = HubPaths::new(&hub_dir);
    let ca =
        gdx_certs::Ca::from_pem(&std::fs::read_to_string(paths.ca_cert())?, &std::fs::read_to_string(paths.ca_key())?)?;
    for (node, name) in AGENTS {
        let node_id = NodeId::parse(node)?;
        let token = {
            let store = Store::open(&paths.db())?;
            enrol::make_token(&store, &config, &ca, &node_id, Role::Agent, 3600, now())?
        };
        let dir = root.join(format!("agent-{}", node.replace('/', "-")));
        let status = tokio::process::Command::new(&agent_exe)
            .arg("--data")
            .arg(&dir)
            .args(["enroll", "--token", &token.encode()])
            .stdout(Stdio::null())
            .status()
            .await?;
        if !status.success() {
            anyhow::bail!("the demo could not enrol {node}; see the error above");
        }
        println!("enrolled agent {node} ({name}) in {}", dir.display());
        let resource = sample_data(&dir, node)?;
        println!("  publishes {resource}");
        children.push(spawn(&agent_exe, &dir, &["run"])?);
    }

    let store = Store::open(&paths.db())?;
    let connected = || {
        nodes::list(&store, &paths.dir.join("vaults"), now())
            .map(|l| l.iter().filter(|n| n.state == "connected").count())
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(30), "the agents to connect", || connected() == AGENTS.len()).await?;
    println!("\n{} of {} agents connected:\n", connected(), AGENTS.len());
    let vaults = paths.dir.join("vaults");
    let synced =
        || nodes::list(&store, &vaults, now()).map(|l| l.iter().map(|n| n.resources.len()).sum::<usize>()).unwrap_or(0);
    wait_for(Duration::from_secs(60), "the first sync of every resource", || synced() == AGENTS.len()).await?;
    print!("{}", nodes::table(&nodes::list(&store, &vaults, now())?));
    let hub = hub_dir.display();
    let agent = root.join("agent-630000-gongan");
    println!(
        "\nWhere to look (in another terminal):\n  gdx-hub --data {hub} nodes              enrolled nodes and their state\n  gdx-agent --data {} status   one agent's view\n  gdx-hub --data {hub} revoke 630000/gongan   watch that agent get cut off\n  gdx-agent --data {} status   the 民政 agent's quarantine (two bad CSV lines)\n  sqlite3 {hub}/vaults/630000-gongan.db 'SELECT * FROM hukou LIMIT 5'\n  edit {}/source/hukou.db or drop a CSV into {}/drop: the change reaches the vault\n  logs: {}/*/run.log\n\nPress Ctrl-C to stop the demo; its files stay in {}.",
        agent.display(),
        root.join("agent-630000-minzheng").display(),
        agent.display(),
        root.join("agent-630000-minzheng").display(),
        root.display(),
        root.display()
    );
    shutdown.await;
    println!("stopping the demo");
    for mut child in children {
        stop(&mut child).await;
    }
    Ok(())
}

/// Writes a department's sample source and declares it in agent.toml;
/// returns a one-line description.
fn sample_data(dir: &Path, node: &str) -> anyhow::Result<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ node.len() as u64);
    let people: Vec<Person> = (0..300).map(|_| Person::random(&mut rng)).collect();
    let toml = if node.ends_with("gongan") {
        let src = dir.join("source");
        std::fs::create_dir_all(&src)?;
        let db = src.join("hukou.db");
        let conn = rusqlite::Connection::open(&db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS people (id_number TEXT PRIMARY KEY, name TEXT, gender TEXT, minzu TEXT, birth TEXT, county TEXT)",
        )?;
        let tx = conn.unchecked_transaction()?;
        for p in &people {
            tx.execute(
                "INSERT OR REPLACE INTO people VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![p.id, p.name, p.gender, p.minzu, p.birth, p.county],
            )?;
        }
        tx.commit()?;
        format!(
            "[[resource]]\ncode = \"hukou\"\nkey = [\"id_number\"]\nschedule = \"1m\"\nsource = {{ kind = \"sqlite\", path = \"{}\", table = \"people\" }}\n",
            db.display()
        )
    } else {
        let drop = dir.join("drop");
        std::fs::create_dir_all(&drop)?;
        let mut csv = String::from("证件号码,姓名,保障人数,月保障金额,所在县\r\n");
        for (i, p) in people.iter().take(120).enumerate() {
            csv.push_str(&format!(
                "{},{},{},\"{:.2}\",{}\r\n",
                p.id,
                p.name,
                1 + i % 5,
                600.0 + (i % 7) as f64 * 85.5,
                p.county
            ));
        }
        csv.push_str(",无证件号码,1,\"600.00\",同德县\r\n");
        csv.push_str("632522199001010000,\"引号\"错误,1,600,同德县\r\n");
        let (bytes, _, _) = encoding_rs::GBK.encode(&csv);
        std::fs::write(drop.join("dibao-2026-11.csv"), bytes)?;
        format!(
            "[[resource]]\ncode = \"dibao\"\nkey = [\"证件号码\"]\nschedule = \"1m\"\nsource = {{ kind = \"csv\", dir = \"{}\", encoding = \"auto\" }}\n",
            drop.display()
        )
    };
    let mut config = std::fs::OpenOptions::new().append(true).open(dir.join("agent.toml"))?;
    std::io::Write::write_all(&mut config, format!("\n{toml}").as_bytes())?;
    Ok(if node.ends_with("gongan") {
        "hukou: 300 residents in a SQLite table (valid 身份证号, six peoples)".to_owned()
    } else {
        "dibao: 低保 records as a GBK CSV drop, with two bad lines".to_owned()
    })
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

struct Person {
    id: String,
    name: String,
    gender: &'static str,
    minzu: &'static str,
    birth: String,
    county: String,
}

impl Person {
    fn random(rng: &mut Rng) -> Self {
        let (minzu, names): (&str, &[&str]) = match rng.next() % 6 {
            0 => ("藏族", &["才让", "卓玛", "扎西", "拉毛", "多杰", "尕藏", "央金", "索南"]),
            1 => ("回族", &["马晓明", "马秀兰", "冶成福", "马海军", "韩梅", "马占山"]),
            2 => ("土族", &["祁永寿", "李索南", "吕成英", "祁秀梅", "星全成"]),
            3 => ("撒拉族", &["韩乙四夫", "马阿舍", "韩尕毛", "韩忠义"]),
            4 => ("蒙古族", &["乌兰", "巴图", "其木格", "斯琴", "那仁"]),
            _ => ("汉族", &["张伟", "王芳", "李娜", "刘强", "陈静", "赵磊"]),
        };
        let counties = ["632522", "632521", "632523", "630102", "630121", "632801", "632701"];
        let county = rng.pick(&counties);
        let year = 1940 + rng.next() % 80;
        let month = 1 + rng.next() % 12;
        let day = 1 + rng.next() % 28;
        let seq = rng.next() % 1000;
        let first17 = format!("{county}{year:04}{month:02}{day:02}{seq:03}");
        let check = gdx_common::idnumber::check_char(first17.as_bytes()).unwrap_or('0');
        Person {
            id: format!("{first17}{check}"),
            name: rng.pick(names).to_owned(),
            gender: if seq % 2 == 1 { "男" } else { "女" },
            minzu,
            birth: format!("{year:04}-{month:02}-{day:02}"),
            county: DivisionCode::parse(county).map(|d| d.name()).unwrap_or_default(),
        }
    }
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
