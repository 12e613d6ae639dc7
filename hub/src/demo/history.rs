//! The demo's past: two months of generated activity before this one, so
//! that the 考核 ranking and trends have something to show. Every event is
//! marked `"demo_history": true` in its audit entry's detail: an enrolment
//! of each department at the start, and the data changes of each resource
//! on its 更新周期, some departments skipping more days than others. They
//! go to the audit log of the hub each department attaches to, through
//! that hub's exchange outbox, as any event does.

use std::path::Path;

use gdx_common::NodeId;
use gdx_common::audit::Event;

use super::departments::Province;

/// Writes the history; returns how many events.
pub(super) fn write(root: &Path, province: &Province, seed: u64, now: i64) -> anyhow::Result<usize> {
    let (y, m, _) = gdx_common::units::civil_from_days(now.div_euclid(86_400));
    let this_month = gdx_common::units::days_from_civil(y, m, 1);
    let (py, pm) = if m > 2 { (y, m - 2) } else { (y - 1, m + 10) };
    let from = gdx_common::units::days_from_civil(py, pm, 1);
    let mut written = 0;
    for (n, dept) in province.departments.iter().enumerate() {
        let node = NodeId::parse(&dept.node)?;
        let prefecture = node.division().prefecture().to_string();
        let hub = match province.prefectures.contains(&prefecture) {
            true => root.join(format!("hub-{prefecture}")),
            false => root.join("hub-630000"),
        };
        let conn = gdx_files::open_existing(&gdx_hub::store::HubPaths::new(&hub).exchange_db())?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let tx = conn.unchecked_transaction()?;
        let note = |kind: &str, at: i64, resource: Option<&str>, detail: serde_json::Value| {
            gdx_hub::store::outbox::note(
                &tx,
                &Event {
                    kind: kind.into(),
                    at,
                    node: Some(dept.node.clone()),
                    resource: resource.map(str::to_owned),
                    request: None,
                    detail,
                },
            )
        };
        note("enrolled", from * 86_400 + 9 * 3600, None, serde_json::json!({ "demo_history": true, "role": "agent" }))?;
        written += 1;
        // how often this department misses its cycle: 0 to 5 days in 10
        let mut state = seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 10
        };
        let misses = next() % 6;
        for res in &dept.resources {
            let every = match res.cycle.as_str() {
                "实时" | "每日" => 1,
                "每周" => 7,
                _ => 30,
            };
            let mut day = from;
            while day < this_month {
                if next() >= misses {
                    let detail = serde_json::json!({ "demo_history": true, "seq": 0, "epoch": 0, "rows": 1 + next(), "sha256": "" });
                    note("changeset", day * 86_400 + 10 * 3600, Some(&res.code), detail)?;
                    written += 1;
                }
                day += every;
            }
        }
        tx.commit()?;
    }
    Ok(written)
}
