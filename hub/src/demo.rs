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
    print!("{}", nodes::table(&nodes::list(&store, &paths.dir.join("vaults"), now())?));
    let hub = hub_dir.display();
    let agent = root.join("agent-630000-gongan");
    println!(
        "\nWhere to look (in another terminal):\n  gdx-hub --data {hub} nodes              enrolled nodes and their state\n  gdx-agent --data {} status   one agent's view\n  gdx-hub --data {hub} revoke 630000/gongan   watch that agent get cut off\n  logs: {}/*/run.log\n\nPress Ctrl-C to stop the demo; its files stay in {}.",
        agent.display(),
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
