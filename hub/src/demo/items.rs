//! The demo's 政务服务事项 lists: 卫健 at province, 西宁 and two 海南州
//! counties keep their 权责清单 (the province and 兴海县 as XLSX, 西宁 as
//! UTF-8 CSV, 共和县 as GBK CSV). The same 行政许可 runs through all
//! levels; 共和县 names one differently and 兴海县 cites an outdated legal
//! basis, which the provincial consistency report finds, and nothing else.

use std::path::Path;
use std::time::Duration;

use super::wait_for;

const PUBLIC_PLACES: &str = "《公共场所卫生管理条例》第八条";
const CLINICS: &str = "《医疗机构管理条例》第十五条";
const OUTDATED_CLINICS: &str = "《医疗机构管理条例》（1994年）第十五条";
const RADIATION: &str = "《放射诊疗管理规定》第十一条";

/// A list row: 事项名称, 类别, 基本编码, 实施依据, 层级, 办理时限.
type Row = [&'static str; 6];

/// The list of `node`, if it keeps one in the demo.
fn rows_of(node: &str) -> Option<Vec<Row>> {
    let place = |name| [name, "行政许可", "0100201000", PUBLIC_PLACES, "省级、市级、县级", "20个工作日"];
    let clinic = |basis| ["医疗机构执业登记", "行政许可", "0100202000", basis, "省级、市级、县级", "45个工作日"];
    let radiation = ["放射诊疗许可", "行政许可", "0100203000", RADIATION, "省级、市级", "20个工作日"];
    Some(match node {
        "630000/weijian" | "630100/weijian" => vec![place("公共场所卫生许可"), clinic(CLINICS), radiation],
        "632521/weijian" => vec![place("公共场所卫生许可证核发"), clinic(CLINICS)],
        "632524/weijian" => vec![place("公共场所卫生许可"), clinic(OUTDATED_CLINICS)],
        _ => return None,
    })
}

/// How many items the demo's lists hold together.
pub(super) fn expected() -> usize {
    ["630000/weijian", "630100/weijian", "632521/weijian", "632524/weijian"]
        .iter()
        .filter_map(|n| rows_of(n))
        .map(|r| r.len())
        .sum()
}

/// Writes `node`'s list into `dir` and returns its `[[items]]` declaration.
pub(super) fn write_list(dir: &Path, node: &str, department: &str) -> anyhow::Result<Option<String>> {
    let Some(rows) = rows_of(node) else { return Ok(None) };
    let header = ["事项名称", "事项类型", "基本编码", "设定依据", "行使层级", "办理时限"];
    let file = match node {
        "632521/weijian" | "630100/weijian" => {
            let mut text = header.join(",") + "\n";
            for r in &rows {
                text.push_str(&r.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(","));
                text.push('\n');
            }
            let path = dir.join("权责清单.csv");
            let bytes = match node {
                "632521/weijian" => encoding_rs::GBK.encode(&text).0.into_owned(),
                _ => text.into_bytes(),
            };
            std::fs::write(&path, bytes)?;
            path
        }
        _ => {
            use rust_xlsxwriter::{Format, Workbook};
            let mut book = Workbook::new();
            let sheet = book.add_worksheet();
            sheet.set_name("权责清单")?;
            let bold = Format::new().set_bold();
            sheet.merge_range(0, 0, 0, 5, &format!("{department}权责清单"), &bold)?;
            for (c, h) in header.iter().enumerate() {
                sheet.write_string_with_format(1, c as u16, *h, &bold)?;
            }
            for (r, row) in rows.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    sheet.write_string(r as u32 + 2, c as u16, *v)?;
                }
            }
            let path = dir.join("权责清单.xlsx");
            book.save(&path)?;
            path
        }
    };
    Ok(Some(format!(
        "\n[[items]]\nname = \"quanze\"\nfile = {}\ndepartment = {}\nschedule = \"1m\"\n",
        super::sources::toml_str(&file.display().to_string()),
        super::sources::toml_str(department)
    )))
}

/// Waits for every list at the province and prints its consistency report.
pub(super) async fn items_demo(root: &Path) -> anyhow::Result<()> {
    let province = root.join("hub-630000");
    let vaults = gdx_hub::store::vault::Vaults::at(&province)?;
    let held = || gdx_hub::items::library(&vaults).map(|l| l.len()).unwrap_or(0);
    wait_for(Duration::from_secs(60), "every 权责清单 at the province", || held() >= expected()).await?;
    let report =
        gdx_hub::items::analyse(&vaults, &gdx_hub::items::Filter::default()).map_err(anyhow::Error::msg)?.report;
    println!(
        "\n政务服务事项库: 卫健 at the province, 西宁 and two 海南州 counties keep their 权责清单 (XLSX, UTF-8 and GBK CSV); the province compares each item with its own of the same 基本编码:\n"
    );
    for d in &report.deviations {
        println!(
            "  {} {}: {} — the province says {:?}, it says {:?}",
            d.basic_code, d.node, d.field, d.province, d.theirs
        );
    }
    println!(
        "  ({} items in the library; gdx-hub items consistency --out report.xlsx writes the report for Excel or WPS)",
        held()
    );
    Ok(())
}
