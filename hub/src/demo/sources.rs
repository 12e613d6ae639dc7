//! Each department's sample sources: tables of generated rows (in SQLite,
//! or in its PostgreSQL or MariaDB database, [`super::databases`]), the
//! 低保 list as a GBK CSV drop with two bad lines, and the catalogue entries
//! and `[[resource]]` tables declared in its agent.toml.

use super::databases::Databases;
use super::departments::{Department, Gen, Resource};
use super::supervision::{LICENSED, licensed};
use super::*;

/// Writes a department's sample sources (tables in its database, and for
/// 低保 a GBK CSV drop with two bad lines) and catalogue entries, and
/// declares them in agent.toml.
/// `registers` carries the people of 公安's household register and the
/// enterprises of 市场监管's to the departments after them: 民政's first 低保
/// rows and 卫健's first health records are some of those people (one name
/// and one birth date written otherwise), 发改's first 双公示 rows some of
/// those enterprises, so the population base has members to merge and
/// disagreements to show.
pub(super) fn sample_data(
    dir: &Path,
    dept: &Department,
    seed: u64,
    databases: &Databases,
    registers: &mut Registers,
) -> anyhow::Result<()> {
    let Registers { people: registered, firms: registered_firms } = registers;
    let node = NodeId::parse(&dept.node)?;
    let provider_code = CreditCode::compose(&format!("11{}", node.division()), &dept.org)?;
    // people of the department's own area
    let mut gen_ = Generator::within(seed, node.division());
    std::fs::create_dir_all(dir.join("catalog"))?;
    let mut declared = String::new();
    for res in &dept.resources {
        let firms = res.columns.iter().any(|c| matches!(c.values, Gen::CreditCode | Gen::Company));
        let mut rows: Vec<Vec<String>> = (0..res.rows)
            .map(|i| {
                let person = match registered.get(i) {
                    Some(p) if res.code == "dibao" && i < 40 => p.clone(),
                    Some(p) if res.code == "jiankang" && i < 60 => p.clone(),
                    _ => gen_.person(),
                };
                if res.code == "hukou" {
                    registered.push(person.clone());
                }
                let firm =
                    firms.then(|| match (res.code.as_str(), registered_firms.get(i), registered_firms.get(i + 3)) {
                        ("shuanggongshi", Some(f), _) if i < 30 => f.clone(),
                        // the dishonest list names registered enterprises (not those with notices)
                        ("shixin", _, Some(f)) => f.clone(),
                        // the first registrations need later licences, at counties with the licensing departments
                        ("faren", _, _) if i < LICENSED.len() => licensed(gen_.enterprise(), LICENSED[i].0),
                        _ => gen_.enterprise(),
                    });
                if res.code == "faren"
                    && let Some(f) = &firm
                {
                    registered_firms.push(f.clone());
                }
                res.columns.iter().map(|c| value(&c.values, i, &person, firm.as_ref(), &mut gen_)).collect()
            })
            .collect();
        match res.code.as_str() {
            // two rows the agent quarantines: a bad check character, a birth date that does not exist
            "hukou" => {
                let mut bad_check = rows[0].clone();
                let id = &mut bad_check[0];
                let last = if id.ends_with('0') { '1' } else { '0' };
                id.pop();
                id.push(last);
                let p = gen_.person();
                let mut bad_date: Vec<String> =
                    res.columns.iter().map(|c| value(&c.values, 0, &p, None, &mut gen_)).collect();
                bad_date[4] = "1990-02-30".into();
                rows.extend([bad_check, bad_date]);
            }
            // the same person's name as 民政 wrote it
            "dibao" if !registered.is_empty() => rows[0][1] = format!("{}（低保登记）", rows[0][1]),
            // a birth date 卫健's record gives otherwise than the register
            "jiankang" if !registered.is_empty() => rows[1][2] = "2001-01-01".into(),
            // business scopes that need a later licence (双告知)
            "faren" => {
                if let Some(at) = res.columns.iter().position(|c| c.column == "scope") {
                    for (row, (_, text)) in rows.iter_mut().zip(LICENSED) {
                        row[at] = text.to_owned();
                    }
                }
            }
            // the second listing has ended
            "shixin" if rows.len() > 1 => {
                let n = rows[1].len();
                rows[1][n - 2] = "已履行完毕，信用修复".into();
                rows[1][n - 1] = "2025-06-30".into();
            }
            // the same enterprise's name as a 双公示 decision wrote it
            "shuanggongshi" if !registered_firms.is_empty() => rows[0][2] = format!("{}（分公司）", rows[0][2]),
            _ => {}
        }
        let key = res.columns[0].column.as_str();
        let (source, format_type) = if res.code == "dibao" {
            let drop = dir.join("drop");
            std::fs::create_dir_all(&drop)?;
            std::fs::write(drop.join("dibao-2026-11.csv"), dibao_csv(res, &rows))?;
            (format!("{{ kind = \"csv\", dir = {} }}", toml_str(&drop.display().to_string())), "csv")
        } else if let Some(source) = databases.load(dir, dept, res, &rows)? {
            let format_type = if source.contains("\"postgres\"") { "postgresql" } else { "mysql" };
            (source, format_type)
        } else {
            let src = dir.join("source");
            std::fs::create_dir_all(&src)?;
            let db = src.join("data.db");
            write_table(&db, res, &rows)?;
            let path = toml_str(&db.display().to_string());
            (format!("{{ kind = \"sqlite\", path = {path}, table = \"{}\" }}", res.code), "sqlite")
        };
        let entry = catalog_entry(&node, dept, provider_code.as_str(), res, format_type)?;
        let file = format!("catalog/{}.toml", res.code);
        std::fs::write(dir.join(&file), toml::to_string(&entry)?)?;
        declared.push_str(&format!(
            "\n[[resource]]\ncode = \"{}\"\nkey = [{}]\nschedule = \"1m\"\nsource = {source}\ncatalog = \"{file}\"\n",
            res.code,
            toml_str(key)
        ));
    }
    if let Some(list) = super::items::write_list(dir, &dept.node, &dept.name)? {
        declared.push_str(&list);
    }
    let mut config = std::fs::OpenOptions::new().append(true).open(dir.join("agent.toml"))?;
    std::io::Write::write_all(&mut config, declared.as_bytes())?;
    Ok(())
}

/// The registers that later departments' rows draw on.
#[derive(Default)]
pub(super) struct Registers {
    pub(super) people: Vec<Person>,
    pub(super) firms: Vec<Enterprise>,
}

pub(super) fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

pub(super) fn catalog_entry(
    node: &NodeId,
    dept: &Department,
    provider_code: &str,
    res: &Resource,
    format_type: &str,
) -> anyhow::Result<gdx_common::catalog::CatalogEntry> {
    use gdx_common::catalog::{CatalogEntry, FormatCategory, InfoItem, ValueKind};
    let items = res
        .columns
        .iter()
        .map(|c| {
            Ok(InfoItem {
                name: c.item.clone(),
                column: (c.column != c.item).then(|| c.column.clone()),
                data_type: c.data_type.parse().map_err(anyhow::Error::msg)?,
                length: c.length,
                sensitive: matches!(c.values, Gen::IdNumber),
                kind: match c.values {
                    Gen::IdNumber => Some(ValueKind::IdNumber),
                    Gen::CreditCode | Gen::CreditCodeOf(_) => Some(ValueKind::CreditCode),
                    Gen::Parcel(..) => Some(ValueKind::Geometry),
                    Gen::Birth | Gen::Date => Some(ValueKind::Date),
                    _ => None,
                },
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let csv = format_type == "csv";
    Ok(CatalogEntry {
        code: res.entry.to_owned(),
        resource: gdx_common::data::ResourceCode::parse(&res.code)?,
        class: res.class.parse().map_err(anyhow::Error::msg)?,
        classification: res.classification.iter().map(|c| (*c).to_owned()).collect(),
        name: res.name.to_owned(),
        provider: node.clone(),
        provider_name: dept.name.to_owned(),
        provider_code: provider_code.to_owned(),
        summary: res.summary.to_owned(),
        format: if csv { FormatCategory::Spreadsheet } else { FormatCategory::Database },
        format_type: format_type.to_owned(),
        items,
        sharing_type: res.sharing.parse().map_err(anyhow::Error::msg)?,
        sharing_condition: res.condition.clone(),
        sharing_method: res.method.parse().map_err(anyhow::Error::msg)?,
        legal_basis: res.legal_basis.clone(),
        open_to_public: res.open,
        open_condition: None,
        update_cycle: res.cycle.parse().map_err(anyhow::Error::msg)?,
        published: "2026-11-01".to_owned(),
        related: res.related.iter().map(|c| (*c).to_owned()).collect(),
    })
}

/// One column's value in a row about `p` (and, for rows about a market
/// entity, `firm`).
pub(super) fn value(g: &Gen, i: usize, p: &Person, firm: Option<&Enterprise>, gen_: &mut Generator) -> String {
    let rng = gen_.rng();
    match (g, firm) {
        (Gen::CreditCode, Some(f)) => f.credit_code.clone(),
        (Gen::Company, Some(f)) => f.name.clone(),
        (Gen::PersonName, Some(f)) => f.representative.clone(),
        (Gen::County, Some(f)) => f.county.clone(),
        (Gen::IdNumber, _) => p.id_number.clone(),
        (Gen::PersonName, None) => p.name.clone(),
        (Gen::Gender, _) => p.sex().to_owned(),
        (Gen::Minzu, _) => p.ethnicity.to_owned(),
        (Gen::Birth, _) => p.birth.clone(),
        (Gen::County | Gen::CreditCode | Gen::Company, _) => p.county.clone(),
        (Gen::Date, _) => gen_.date_since(2015),
        (Gen::Money(lo, hi), _) => {
            let cents = rng.range(u64::from(*lo) * 100, u64::from(*hi) * 100);
            format!("{}.{:02}", cents / 100, cents % 100)
        }
        (Gen::Int(lo, hi), _) => rng.range(u64::from(*lo), u64::from(*hi)).to_string(),
        (Gen::Pick(items), _) => (*rng.pick(items)).to_owned(),
        (Gen::Serial(prefix), _) => format!("{prefix}{:06}", i + 1),
        (Gen::Parcel(lon, lat), _) => parcel(i, *lon, *lat).0,
        (Gen::ParcelArea(lon, lat), _) => format!("{:.2}", parcel(i, *lon, *lat).1),
        (Gen::CreditCodeOf(head), _) => {
            const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
            let org: String = (0..8).map(|_| CHARS[rng.below(CHARS.len() as u64) as usize] as char).collect();
            let county = p.id_number.get(..6).unwrap_or("630000");
            CreditCode::compose(&format!("{head}{county}"), &org).map(|c| c.as_str().to_owned()).unwrap_or_default()
        }
        (Gen::OrgName(endings), _) => {
            const WORDS: [&str; 10] =
                ["青海湖", "昆仑", "三江源", "河湟", "祁连", "柴达木", "江河", "高原", "雪域", "湟水"];
            let county = p.county.trim_start_matches("青海省");
            format!("{county}{}{}", rng.pick(&WORDS), rng.pick(endings))
        }
    }
}

/// The demo's parcel `i` near (`lon`, `lat`): a rectangle of 20 to 120 m a
/// side, turned, as WKT in CGCS2000 degrees, and its area in m². The same
/// `i` always gives the same parcel, so the boundary and the registered area
/// of a row agree.
fn parcel(i: usize, lon: f64, lat: f64) -> (String, f64) {
    // splitmix64 of the row number: four independent draws in 0..1
    let mut x = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut draw = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let (cx, cy) = (lon + (draw() - 0.5) * 0.3, lat + (draw() - 0.5) * 0.16);
    let (w, h) = (20.0 + draw() * 100.0, 20.0 + draw() * 100.0);
    let turn = draw() * std::f64::consts::FRAC_PI_2;
    let metres_per_degree = 111_320.0;
    let corners: Vec<String> = [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0)]
        .iter()
        .map(|(sx, sy)| {
            let (dx, dy) = (sx * w / 2.0, sy * h / 2.0);
            let (ex, ny) = (dx * turn.cos() - dy * turn.sin(), dx * turn.sin() + dy * turn.cos());
            let x = cx + ex / (metres_per_degree * cy.to_radians().cos());
            let y = cy + ny / metres_per_degree;
            format!("{x:.7} {y:.7}")
        })
        .collect();
    (format!("POLYGON(({}))", corners.join(",")), w * h)
}

/// Creates `res`'s table in `db` (typed by the 数据类型 of its items) with `rows`.
pub(super) fn write_table(db: &Path, res: &Resource, rows: &[Vec<String>]) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    let cols: Vec<String> = res
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = match c.data_type.as_str() {
                "I" => "INTEGER",
                "Y" | "F" | "N" | "B" => "REAL",
                _ => "TEXT",
            };
            format!("\"{}\" {ty}{}", c.column, if i == 0 { " PRIMARY KEY" } else { "" })
        })
        .collect();
    conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS \"{}\" ({})", res.code, cols.join(", ")))?;
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(&format!("INSERT OR REPLACE INTO \"{}\" VALUES ({})", res.code, marks.join(", ")))?;
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row.iter()))?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The 低保 drop: GBK, CRLF, quoted amounts, and two bad lines that end up
/// in quarantine while the rows around them sync.
pub(super) fn dibao_csv(res: &Resource, rows: &[Vec<String>]) -> Vec<u8> {
    let header: Vec<&str> = res.columns.iter().map(|c| c.column.as_str()).collect();
    let mut csv = header.join(",") + "\r\n";
    for r in rows {
        csv.push_str(&format!("{},{},{},\"{}\",{}\r\n", r[0], r[1], r[2], r[3], r[4]));
    }
    csv.push_str(",无证件号码,1,\"600.00\",同德县\r\n");
    csv.push_str("632522199001010000,\"引号\"错误,1,600,同德县\r\n");
    encoding_rs::GBK.encode(&csv).0.into_owned()
}
