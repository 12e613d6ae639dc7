//! The 政务服务事项库 end to end: departments at province, prefecture and
//! county level keep their 权责清单 as an XLSX workbook (a merged title, a
//! two-row header under a merged 责任清单 cell, an empty row, a misspelled
//! category) or CSV (UTF-8, GBK); their agents check every row, set the
//! bad ones aside with their row numbers, and sync the lists to their
//! hubs; 西宁 forwards its departments' lists to the province, whose
//! library compares each item with the province's of the same 基本编码 and
//! finds exactly the deviations made; the report's XLSX reads back; a
//! corrected list arrives as the list's next changeset.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use gdx_tests::{Agent, Hub, wait_until};

const BASIS: &str = "《中华人民共和国食品安全法》第三十五条";
const OLD_BASIS: &str = "《中华人民共和国食品安全法》（2015年修订）第三十五条";
const DRUGS: &str = "《中华人民共和国药品管理法》第五十二条";

/// The province's list as a workbook the way offices make them.
fn province_workbook(path: &Path) {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("权责清单").unwrap();
    let bold = Format::new().set_bold();
    sheet.merge_range(0, 0, 0, 7, "青海省市场监督管理局权责清单", &bold).unwrap();
    for (c, h) in ["事项名称", "事项类型", "基本编码", "设定依据", "行使层级", "办理时限"].iter().enumerate()
    {
        sheet.merge_range(1, c as u16, 2, c as u16, h, &bold).unwrap();
    }
    sheet.merge_range(1, 6, 1, 7, "责任清单", &bold).unwrap();
    sheet.write_string(2, 6, "责任事项").unwrap();
    sheet.write_string(2, 7, "追责情形").unwrap();
    let rows: [[&str; 8]; 3] = [
        [
            "食品经营许可",
            "行政许可",
            "0100101000",
            BASIS,
            "省级、市级、县级",
            "20个工作日",
            "受理、审查、决定",
            "违法准予许可的",
        ],
        ["药品零售企业许可", "行政许可", "0100102000", DRUGS, "省级、县级", "30个工作日", "", ""],
        ["食品生产许可", "行政许诺", "0100103000", BASIS, "省级", "20个工作日", "", ""],
    ];
    for (r, row) in rows.iter().enumerate() {
        // an empty row between the second and third items, as lists often have
        let at = 3 + r as u32 + u32::from(r == 2);
        for (c, v) in row.iter().enumerate() {
            sheet.write_string(at, c as u16, *v).unwrap();
        }
    }
    // a code typed as a number loses its leading zero; the reader restores it
    sheet.write_string(7, 0, "保健食品销售备案").unwrap();
    sheet.write_string(7, 1, "行政确认").unwrap();
    sheet.write_number(7, 2, 700_101_000.0).unwrap();
    sheet.write_string(7, 3, BASIS).unwrap();
    sheet.write_string(7, 4, "省级").unwrap();
    book.save(path).unwrap();
}

fn csv(path: &Path, rows: &[[&str; 5]], gbk: bool) {
    let mut text = String::from("事项名称,类别,基本编码,实施依据,层级\n");
    for r in rows {
        text.push_str(&r.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    let bytes = if gbk { encoding_rs::GBK.encode(&text).0.into_owned() } else { text.into_bytes() };
    std::fs::write(path, bytes).unwrap();
}

fn department(hub: &Hub, node: &str, list: &Path) -> Agent {
    let a = Agent::new();
    a.enroll(&hub.token(node, "1h")).ok();
    a.add_config(&format!("[[items]]\nname = \"quanze\"\nfile = \"{}\"\n", list.display()));
    a
}

fn synced(agent: &Agent) -> serde_json::Value {
    let (code, out, err) = agent.sync(&[]);
    assert_eq!(code, 0, "{out} {err}");
    out
}

fn json(out: String) -> serde_json::Value {
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

gdx_tests::on_both_stores! {
    the_provincial_library_finds_exactly_the_deviations_of_the_levels_below_in: the_provincial_library_finds_exactly_the_deviations_of_the_levels_below, on_postgres_the_provincial_library_finds_exactly_the_deviations_of_the_levels_below;
}

/// Run twice: the province (the prefecture stays on SQLite) with its stores in SQLite files, then on PostgreSQL.
fn the_provincial_library_finds_exactly_the_deviations_of_the_levels_below_in(
    pg: Option<&gdx_tests::servers::Postgres>,
) {
    let mut province = gdx_tests::servers::hub_on(pg, "630000");
    province.start();
    let mut xining = Hub::join(&province.hub_token("630100/hub"));
    xining.start();
    let tmp = tempfile::tempdir().unwrap();
    let book = tmp.path().join("省局权责清单.xlsx");
    province_workbook(&book);
    let same = tmp.path().join("xining.csv");
    csv(&same, &[["食品经营许可", "行政许可", "0100101000", BASIS, "市级"]], false);
    let renamed = tmp.path().join("datong.csv");
    csv(
        &renamed,
        &[
            ["食品经营许可证核发", "行政许可", "0100101000", BASIS, "县级"],
            ["小作坊登记", "行政许可", "0100199000", BASIS, "县级"],
        ],
        true,
    );
    let outdated = tmp.path().join("chengdong.csv");
    csv(&outdated, &[["食品经营许可", "行政许可", "0100101000", OLD_BASIS, "县级"]], true);

    let scjg = department(&province, "630000/scjg", &book);
    let out = synced(&scjg);
    assert_eq!(out["resources"][0]["inserted"], 3, "{out}");
    let status = scjg.cmd(&["status"]).ok();
    assert!(
        status.contains("row 7: 类别 \"行政许诺\" is not one of the 11+X categories"),
        "the misspelled category is set aside with its row number:\n{status}"
    );
    let city = department(&xining, "630100/scjg", &same);
    let datong = department(&xining, "630121/scjg", &renamed);
    let chengdong = department(&xining, "630102/scjg", &outdated);
    for a in [&city, &datong, &chengdong] {
        synced(a);
    }

    // 西宁 forwards its departments' lists: the province holds all four
    wait_until(Duration::from_secs(30), "every list at the province", || {
        json(province.cmd(&["items", "list", "--json"]).ok()).as_array().unwrap().len() == 7
    });
    let shown = province.cmd(&["items", "show", "0700101000"]).ok();
    assert!(shown.contains("保健食品销售备案") && shown.contains("630000/scjg"), "{shown}");
    let found = province.cmd(&["items", "search", "食品 许可", "--division", "630100"]).ok();
    assert!(found.contains("食品经营许可证核发") && !found.contains("药品零售"), "{found}");

    let report = json(province.cmd(&["items", "consistency", "--json"]).ok());
    let deviations: Vec<(String, String, String)> = report["report"]["deviations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["node"].as_str().unwrap().into(),
                d["field"].as_str().unwrap().into(),
                d["theirs"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        deviations,
        [
            ("630102/scjg".to_owned(), "实施依据".to_owned(), OLD_BASIS.to_owned()),
            ("630121/scjg".to_owned(), "事项名称".to_owned(), "食品经营许可证核发".to_owned()),
        ]
    );
    let without: Vec<&str> = report["report"]["without_province"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["item"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(without, ["小作坊登记"]);
    let not_below: Vec<&str> =
        report["report"]["not_below"].as_array().unwrap().iter().map(|h| h["item"]["name"].as_str().unwrap()).collect();
    assert_eq!(not_below, ["药品零售企业许可"], "exercised at county level, listed by no county");
    // the library is open to anyone under /api/v1/; the report needs a session
    let (status, lib) = province.api_get("/api/v1/items?q=%E9%A3%9F%E5%93%81&division=630100");
    assert_eq!((status, lib["count"].as_u64()), (200, Some(4)), "{lib}");
    assert_eq!(province.api_get("/api/v1/items/consistency").0, 401);
    let xining_only = json(province.cmd(&["items", "consistency", "--division", "630121", "--json"]).ok());
    assert_eq!(xining_only["report"]["deviations"].as_array().unwrap().len(), 1);
    let bad = province.cmd(&["items", "list", "--category", "行政许诺"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("not one of the 11+X categories"), "{}", bad.stderr);

    // the report as a workbook, read back
    let xlsx = tmp.path().join("一致性报告.xlsx");
    let wrote = province.cmd(&["items", "consistency", "--out", xlsx.to_str().unwrap()]).ok();
    assert!(wrote.contains("2 deviations"), "{wrote}");
    {
        use calamine::{Data, Reader, open_workbook_auto};
        let mut wb = open_workbook_auto(&xlsx).unwrap();
        assert_eq!(wb.sheet_names(), ["偏差", "无省级对应事项", "下级未实施", "各部门汇总"]);
        let dev = wb.worksheet_range("偏差").unwrap();
        let cell = |r: u32, c: u32| dev.get_value((r, c)).cloned().unwrap_or(Data::Empty).to_string();
        assert_eq!(cell(1, 3), "省级事项");
        assert_eq!(
            (cell(2, 1), cell(2, 2), cell(2, 4)),
            ("630102/scjg".to_owned(), "实施依据".to_owned(), OLD_BASIS.to_owned())
        );
        assert_eq!(cell(3, 4), "食品经营许可证核发");
        let sum = wb.worksheet_range("各部门汇总").unwrap();
        let rows: Vec<Vec<String>> = sum.rows().skip(2).map(|r| r.iter().map(ToString::to_string).collect()).collect();
        assert!(rows.iter().any(|r| r[0] == "630100/scjg" && r[4] == "100"), "{rows:?}");
        assert!(rows.iter().any(|r| r[0] == "630121/scjg" && r[4] == "0"), "{rows:?}");
    }

    // corrected, the county's list arrives as its next changeset and the deviation is gone
    csv(
        &renamed,
        &[
            ["食品经营许可", "行政许可", "0100101000", BASIS, "县级"],
            ["小作坊登记", "行政许可", "0100199000", BASIS, "县级"],
        ],
        true,
    );
    synced(&datong);
    wait_until(Duration::from_secs(30), "the corrected list at the province", || {
        let r = json(province.cmd(&["items", "consistency", "--json"]).ok());
        r["report"]["deviations"].as_array().unwrap().len() == 1
    });
    let held = json(province.cmd(&["items", "list", "--division", "630121", "--json"]).ok());
    assert!(held.as_array().unwrap().iter().all(|l| l["changeset"] == 2), "{held}");
}
