//! The demo's 监管信息共享 scenario: 市场监管 registers enterprises whose
//! business scope needs a later licence, and the notices reach the
//! licensing departments of their counties, below the prefecture hubs,
//! which claim them; 发改 checks a bidder against the dishonest list during
//! a government procurement, finds it restricted, and reports what it did.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use gdx_common::NodeId;
use gdx_common::creditcode::CreditCode;
use gdx_common::generate::Enterprise;
use gdx_common::notice::Notice;

use super::{agent, wait_for};
use gdx_hub::exchange::Exchange;

/// `supervision.toml` of every demo hub: the province issues notices, and
/// every hub answers checks from the lists and measures.
pub(super) const SUPERVISION_TOML: &str = include_str!("supervision.toml");

/// The first registrations of 市场监管: where each enterprise is registered
/// and a business scope needing a later licence there — a shop in 大通县
/// (food: 大通县市场监管局), a restaurant in 贵德县 (food: 贵德县市场监管局),
/// a hotel in 共和县 (public places: 共和县卫生健康局).
pub(super) const LICENSED: [(&str, &str); 3] = [
    ("630121", "预包装食品销售；日用百货销售"),
    ("632523", "餐饮服务；农副产品收购"),
    ("632521", "住宿服务；美容美发服务；会议及展览服务"),
];

/// `f`, registered at `division` instead: its credit code and county.
pub(super) fn licensed(f: Enterprise, division: &str) -> Enterprise {
    let org = f.credit_code.get(8..16).unwrap_or("MA7G0000").to_owned();
    let code = CreditCode::compose(&format!("91{division}"), &org).map(|c| c.as_str().to_owned());
    let county = gdx_common::DivisionCode::parse(division).map(|d| d.name()).unwrap_or_default();
    let name = f.name.replacen(&f.county, &county, 1);
    Enterprise {
        credit_code: code.unwrap_or(f.credit_code.clone()),
        name,
        county,
        county_code: division.to_owned(),
        ..f
    }
}

/// Shows the notices, one claimed, and a check with its feedback.
pub(super) async fn supervision_demo(agent_exe: &Path, root: &Path) -> anyhow::Result<()> {
    let province = root.join("hub-630000");
    let notices = || -> Vec<Notice> {
        Exchange::open(&province, NodeId::parse("630000/hub").expect("a valid id"))
            .and_then(|x| x.notices(None))
            .unwrap_or_default()
    };
    wait_for(Duration::from_secs(60), "the 双告知 notices", || notices().len() >= LICENSED.len()).await?;
    let at_datong = || {
        Exchange::open(&root.join("hub-630100"), NodeId::parse("630100/hub").expect("a valid id"))
            .and_then(|x| x.notices(Some(&NodeId::parse("630121/scjg").expect("a valid id"))))
            .unwrap_or_default()
    };
    wait_for(Duration::from_secs(60), "the notice to reach 大通县 through 西宁", || !at_datong().is_empty()).await?;
    println!(
        "\n双告知: 青海省市场监督管理局 registered enterprises whose business scope needs a later licence; each licensing department of their county got a notice:\n"
    );
    print!("{}", gdx_hub::supervision::listing::notices_table(&notices(), gdx_hub::util::now()));
    let datong = root.join("agent-630121-scjg");
    let id = at_datong()[0].id.clone();
    let claimed = agent(agent_exe, &datong, &["claim", &id]).await?;
    println!("  大通县市场监督管理局: gdx-agent claim {id}\n  → {}", claimed.trim());

    // 发改 checks a bidder: the list's first entry
    let vault = province.join("vaults").join("630000-fgw.db");
    let bidder: String = rusqlite::Connection::open_with_flags(&vault, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT credit_code FROM shixin ORDER BY entry_no LIMIT 1", [], |r| r.get(0)))
        .context("the dishonest list is not in 发改's vault")?;
    let fgw = root.join("agent-630000-fgw");
    println!("\n联合惩戒: 青海省发展和改革委员会 checks a bidder during a government procurement:\n");
    let shown = agent(agent_exe, &fgw, &["check", &bidder, "--matter", "政府采购"]).await?;
    println!("  gdx-agent check {bidder} --matter 政府采购\n  → {}", shown.trim().replace('\n', "\n    "));
    // the answer's first line: "check ID: …"
    let id =
        shown.split_whitespace().nth(1).map(|w| w.trim_end_matches(':').to_owned()).context("the check's answer")?;
    let reason = "已取消其本次政府采购投标资格";
    let fed = agent(agent_exe, &fgw, &["feedback", &id, "--action", "限制", "--reason", reason]).await?;
    let last = fed.lines().last().unwrap_or_default();
    println!("  gdx-agent feedback {id} --action 限制 --reason {reason}\n  → {last}");
    Ok(())
}
