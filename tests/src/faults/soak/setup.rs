//! What the soak's run is made of besides its faults: the departments'
//! sources and their changes, waiting, and keeping the folders of a failed run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::super::Rng;
use super::{Department, HUB_NAMES};
use crate::{Agent, Hub};

/// A department of the soak: its node, the hub it enrols at (0 the
/// province, 1 海南州, 2 西宁), its resource (and so its vault table), the
/// resource's catalogue entry and class.
pub(super) struct Spec {
    pub(super) node: String,
    pub(super) hub: usize,
    pub(super) code: &'static str,
    pub(super) entry: String,
    pub(super) class: &'static str,
}

/// The departments with a part in the grants and the base, first, in this
/// order: 公安 at the province shares its register with everyone; 公安 of
/// 同德 feeds the population base (forwarded to the province); 民政 of 同德
/// receives the province's register under a grant and shares its own
/// register, which 民政 of 西宁's 城东区 receives across the province.
const ROLES: [(&str, &str, &str, &str); 4] = [
    ("630000/gongan", "huji", "301001/000101", "部门信息资源"),
    ("632522/gongan", "renkou", "101001/000101", "基础信息资源"),
    ("632522/minzheng", "jiuzhu", "301001/000102", "部门信息资源"),
    ("630102/minzheng", "dibao", "301001/000103", "部门信息资源"),
];

/// The hub a department enrols at, as the demo does: 西宁's (2) for
/// 6301…, 海南州's (1) for 6325…, the province's (0) for the rest.
fn hub_of(node: &str) -> usize {
    if node.starts_with("6325") {
        1
    } else if node.starts_with("6301") {
        2
    } else {
        0
    }
}

/// The first `n` (at least the four of [`ROLES`], at most all) of the
/// demo's departments (`gdx-hub demo`'s departments.toml): the four with a
/// part first, then the others in the demo's order, each publishing one
/// register of its own at the hub of its prefecture or at the province.
pub(super) fn departments(n: usize) -> anyhow::Result<Vec<Spec>> {
    let demo: toml::Value = toml::from_str(include_str!("../../../../hub/src/demo/departments.toml"))?;
    let nodes: Vec<&str> = demo
        .get("department")
        .and_then(|d| d.as_array())
        .map(|a| a.iter().filter_map(|d| d.get("node").and_then(|n| n.as_str())).collect())
        .unwrap_or_default();
    anyhow::ensure!(
        (ROLES.len()..=nodes.len()).contains(&n),
        "the soak takes {} to {} of the demo's departments, not {n}",
        ROLES.len(),
        nodes.len()
    );
    let mut specs: Vec<Spec> = ROLES
        .iter()
        .map(|&(node, code, entry, class)| {
            anyhow::ensure!(nodes.contains(&node), "the demo has no department {node}");
            Ok(Spec { node: node.to_owned(), hub: hub_of(node), code, entry: entry.to_owned(), class })
        })
        .collect::<anyhow::Result<_>>()?;
    let others = nodes.iter().filter(|node| !ROLES.iter().any(|r| r.0 == **node));
    for (k, node) in others.take(n - ROLES.len()).enumerate() {
        let entry = format!("301001/{:06}", 104 + k);
        specs.push(Spec {
            node: (*node).to_owned(), hub: hub_of(node), code: "ziyuan", entry, class: "部门信息资源"
        });
    }
    Ok(specs)
}

/// Declares `code` over table `people` of `db`, catalogued as `entry` of `class`, scanned every second.
pub(super) fn declare(agent: &Agent, code: &str, entry: &str, class: &str, db: &Path) {
    let classification = if class == "基础信息资源" { "人口" } else { "社会保障" };
    agent.add_config(&format!(
        r#"[[resource]]
code = "{code}"
key = ["id"]
schedule = "1s"
source = {{ kind = "sqlite", path = "{}", table = "people" }}

[resource.catalog]
code = "{entry}"
class = "{class}"
classification = ["{classification}"]
name = "故障演练{code}"
provider_name = "故障演练部门"
provider_code = "11632522015603015M"
abstract = "编号和姓名"
format = "数据库"
format_type = "sqlite"
sharing_type = "无条件共享"
sharing_method = "接口"
open_to_public = false
update_cycle = "实时"
published = "2026-11-01"
items = [ {{ name = "编号", column = "id", data_type = "C", length = 20 }}, {{ name = "姓名", column = "name", data_type = "C", length = 50 }} ]
"#,
        db.display()
    ));
}

/// One random change to a source: insert, update or delete.
pub(super) fn change(db: &Path, rng: &mut Rng, next_id: &AtomicU64) {
    let Ok(c) = rusqlite::Connection::open(db) else { return };
    let _ = c.busy_timeout(Duration::from_secs(5));
    // the markers of recovery (ids m…) are left alone
    let n: i64 = c.query_row("SELECT count(*) FROM people WHERE id NOT LIKE 'm%'", [], |r| r.get(0)).unwrap_or(0);
    let pick = |rng: &mut Rng| rng.below(n.max(1) as u64) as i64;
    let _ = match rng.below(3) {
        0 => c.execute(
            "INSERT INTO people VALUES (?1, ?2)",
            rusqlite::params![format!("n{}", next_id.fetch_add(1, Ordering::Relaxed)), format!("新{}", rng.below(1000))],
        ),
        1 if n > 0 => c.execute(
            "UPDATE people SET name = ?1 WHERE rowid = (SELECT rowid FROM people WHERE id NOT LIKE 'm%' LIMIT 1 OFFSET ?2)",
            rusqlite::params![format!("改{}", rng.below(100_000)), pick(rng)],
        ),
        _ if n > 10 => {
            c.execute(
                "DELETE FROM people WHERE rowid = (SELECT rowid FROM people WHERE id NOT LIKE 'm%' LIMIT 1 OFFSET ?1)",
                [pick(rng)],
            )
        }
        _ => Ok(0),
    };
}

/// Waits up to `limit` for `cond`; the seconds it took, or None.
pub(super) fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// Raises its flag when dropped.
pub(super) struct StopOnDrop(pub(super) Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Copies every hub's and agent's folder (stores, logs) out of the run's
/// temporary folders, which go when the run stops, into
/// `gdx-faults-kept-SEED` under the system's temporary folder; returns it.
pub(super) fn keep_folders(hubs: &[Hub], departments: &[Department], seed: u64) -> PathBuf {
    let kept = std::env::temp_dir().join(format!("gdx-faults-kept-{seed}"));
    // a run of the same seed before is replaced, not nested
    let _ = std::fs::remove_dir_all(&kept);
    let _ = std::fs::create_dir_all(&kept);
    let folders = hubs
        .iter()
        .zip(HUB_NAMES)
        .map(|(h, name)| (h.dir.path(), format!("hub {name}")))
        .chain(departments.iter().map(|d| (d.agent.dir.path(), format!("agent {}", d.node.replace('/', "-")))));
    for (from, name) in folders {
        let _ = std::process::Command::new("cp").arg("-a").arg(from).arg(kept.join(name)).status();
    }
    kept
}

/// Rewrites `key = …` in a TOML file.
pub(super) fn set_toml(path: &Path, key: &str, value: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} = ")) {
                found = true;
                format!("{key} = \"{value}\"")
            } else {
                l.to_owned()
            }
        })
        .collect();
    anyhow::ensure!(found, "{} has no {key}", path.display());
    std::fs::write(path, out.join("\n") + "\n")?;
    Ok(())
}
