//! 政务服务事项 (government service items): the 11+X categories, one item
//! of a department's power or responsibility list and the check of each of
//! its fields, and the consistency of the same item (same 基本编码) across
//! province, prefecture and county.
//!
//! Pure code. The category codes and the 基本编码 layout are what this
//! platform chose where the national standard is silent
//! (docs/items.md): a 基本编码 is 10 digits, the category's 2-digit code,
//! a 5-digit main item number and a 3-digit sub-item number (000 for a
//! main item).

use serde::{Deserialize, Serialize};

use crate::{DivisionCode, DivisionLevel, NodeId};

/// The columns a list is kept as in a vault (resource `items_NAME`), the
/// key (基本编码) first.
pub const COLUMNS: [&str; 9] =
    ["basic_code", "name", "category", "basis", "subject", "levels", "time_limit", "duties", "accountability"];

/// The 11+X categories of administrative power, with their codes.
pub const CATEGORIES: [(&str, &str); 13] = [
    ("01", "行政许可"),
    ("02", "行政处罚"),
    ("03", "行政强制"),
    ("04", "行政征收(征用)"),
    ("05", "行政给付"),
    ("06", "行政检查"),
    ("07", "行政确认"),
    ("08", "行政奖励"),
    ("09", "行政裁决"),
    ("10", "其他行政权力"),
    ("11", "行政收费"),
    ("12", "行政监督"),
    ("20", "公共服务"),
];

/// A category's code by its name as departments write it (full-width or
/// half-width brackets, 行政征收 and 行政征用 for 行政征收(征用)); the error
/// lists the categories.
pub fn category_code(text: &str) -> Result<&'static str, String> {
    let t = normalize(text);
    let t = match t.as_str() {
        "行政征收" | "行政征用" | "行政征收、征用" => "行政征收(征用)",
        other => other,
    };
    CATEGORIES.iter().find(|(_, name)| *name == t).map(|(code, _)| *code).ok_or_else(|| {
        let names: Vec<&str> = CATEGORIES.iter().map(|(_, n)| *n).collect();
        format!("类别 {:?} is not one of the 11+X categories ({})", text.trim(), names.join("、"))
    })
}

/// The category named by `code`.
pub fn category_name(code: &str) -> Option<&'static str> {
    CATEGORIES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// Text as compared: half-width ASCII and brackets, no spaces.
pub fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{3000}')
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '〔' | '［' | '[' => '[',
            '〕' | '］' | ']' => ']',
            '，' => ',',
            '：' => ':',
            '；' => ';',
            c if ('\u{ff01}'..='\u{ff5e}').contains(&c) => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// `/`, `无`, `-`: a cell that says nothing is given.
fn is_none_given(t: &str) -> bool {
    matches!(t, "/" | "无" | "-" | "—" | "－" | "暂无")
}

/// `text` without what stands in brackets.
fn without_brackets(text: &str) -> String {
    let mut depth = 0u32;
    text.chars()
        .filter(|c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

/// The levels an item is exercised at (行使层级).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    pub province: bool,
    pub prefecture: bool,
    pub county: bool,
}

impl Levels {
    /// `省级、市级、县级`, `省、市、县`, `省级/州级`, `三级`…; empty: the
    /// department's own level only (`own`).
    pub fn parse(text: &str, own: DivisionLevel) -> Result<Self, String> {
        // 省、市（州）、县（市、区）: what is in brackets only names the same level again
        let t = without_brackets(&normalize(text));
        let t = t.as_str();
        let mut l = Self::default();
        if t.is_empty() || is_none_given(t) {
            l.set(own);
            return Ok(l);
        }
        if t == "三级" || t == "省市县三级" {
            return Ok(Self { province: true, prefecture: true, county: true });
        }
        for part in t.split(['、', ',', '，', '/', ';', '；', ' ']).filter(|p| !p.is_empty()) {
            match part.trim_end_matches('级') {
                "省" | "省级" => l.province = true,
                "市" | "州" | "市州" | "地市" | "地" => l.prefecture = true,
                "县" | "区" | "县区" | "区县" => l.county = true,
                other => {
                    return Err(format!(
                        "层级 {other:?} is not 省级, 市级 (州级) or 县级; list them as 省级、市级、县级"
                    ));
                }
            }
        }
        Ok(l)
    }

    fn set(&mut self, level: DivisionLevel) {
        match level {
            DivisionLevel::Province => self.province = true,
            DivisionLevel::Prefecture => self.prefecture = true,
            DivisionLevel::County => self.county = true,
        }
    }

    pub fn has(&self, level: DivisionLevel) -> bool {
        match level {
            DivisionLevel::Province => self.province,
            DivisionLevel::Prefecture => self.prefecture,
            DivisionLevel::County => self.county,
        }
    }

    pub fn label(&self) -> String {
        let parts: Vec<&str> = [(self.province, "省级"), (self.prefecture, "市级"), (self.county, "县级")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, l)| l)
            .collect();
        parts.join("、")
    }
}

/// 办理时限.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeLimit {
    /// 即办.
    Immediate,
    WorkingDays(u32),
    /// Calendar days (日, 天).
    Days(u32),
}

impl TimeLimit {
    /// `即办`, `20个工作日`, `20工作日`, `30日`, `30天`; empty: none given.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let t = normalize(text);
        let t = t.trim_start_matches("法定").trim_start_matches("承诺");
        if t.is_empty() || is_none_given(t) {
            return Ok(None);
        }
        if t == "即办" || t == "当场办结" || t == "即时办结" {
            return Ok(Some(Self::Immediate));
        }
        let t = t.to_owned();
        let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
        let rest = &t[digits.len()..];
        let n: Option<u32> = digits.parse().ok().filter(|n| *n > 0 && *n <= 3650);
        match (n, rest) {
            (Some(n), "个工作日" | "工作日") => Ok(Some(Self::WorkingDays(n))),
            (Some(n), "日" | "天" | "个自然日" | "自然日") => Ok(Some(Self::Days(n))),
            _ => Err(format!("办理时限 {:?} is not 即办, N个工作日 or N日", text.trim())),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Immediate => "即办".into(),
            Self::WorkingDays(n) => format!("{n}个工作日"),
            Self::Days(n) => format!("{n}日"),
        }
    }
}

/// One item of a department's list, its fields checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// 事项名称.
    pub name: String,
    /// 类别, as [`CATEGORIES`] names it.
    pub category: String,
    /// 基本编码.
    pub basic_code: String,
    /// 实施依据 (设定依据): laws and articles.
    pub basis: String,
    /// 实施主体 (the department's name as the list gives it).
    pub subject: String,
    /// 层级 (行使层级).
    pub levels: Levels,
    /// 办理时限.
    pub time_limit: Option<TimeLimit>,
    /// 责任事项, for the responsibility list.
    pub duties: String,
    /// 追责情形.
    pub accountability: String,
}

/// One row as read, by field (each cell's text, trimmed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawItem {
    pub name: String,
    pub category: String,
    pub basic_code: String,
    pub basis: String,
    pub subject: String,
    pub levels: String,
    pub time_limit: String,
    pub duties: String,
    pub accountability: String,
}

/// The fields of a list, in order: (field, the header names departments use for it, required).
pub const FIELDS: [(&str, &[&str], bool); 9] = [
    ("事项名称", &["事项名称", "权力事项名称", "职权名称", "事项"], true),
    ("类别", &["类别", "事项类型", "权力类型", "职权类别", "事项类别"], true),
    ("基本编码", &["基本编码", "事项编码", "权力编码", "职权编码"], true),
    ("实施依据", &["实施依据", "设定依据", "法律依据", "设定和实施依据"], true),
    ("实施主体", &["实施主体", "实施机关", "行使主体"], false),
    ("层级", &["层级", "行使层级", "实施层级"], false),
    ("办理时限", &["办理时限", "法定办结时限", "承诺办结时限", "时限"], false),
    ("责任事项", &["责任事项"], false),
    ("追责情形", &["追责情形", "问责情形", "追责依据"], false),
];

/// The field a header cell names, if any (its index in [`FIELDS`]).
pub fn field_of_header(cell: &str) -> Option<usize> {
    let t = normalize(cell);
    FIELDS.iter().position(|(_, names, _)| names.iter().any(|n| *n == t))
}

impl RawItem {
    /// The row's cell for field `i` of [`FIELDS`].
    pub fn get(&self, field: usize) -> &str {
        match field {
            0 => &self.name,
            1 => &self.category,
            2 => &self.basic_code,
            3 => &self.basis,
            4 => &self.subject,
            5 => &self.levels,
            6 => &self.time_limit,
            7 => &self.duties,
            _ => &self.accountability,
        }
    }

    /// Sets the row's cell for field `i` of [`FIELDS`].
    pub fn set(&mut self, field: usize, value: &str) {
        let v = value.trim().to_owned();
        match field {
            0 => self.name = v,
            1 => self.category = v,
            2 => self.basic_code = v,
            3 => self.basis = v,
            4 => self.subject = v,
            5 => self.levels = v,
            6 => self.time_limit = v,
            7 => self.duties = v,
            _ => self.accountability = v,
        }
    }

    /// True when every cell is empty (an empty row, skipped).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The item, or one message per field at fault. `own`: the level of the
    /// department keeping the list (an empty 层级 means its own);
    /// `department`: its name, for an empty 实施主体.
    pub fn check(&self, own: DivisionLevel, department: &str) -> Result<Item, Vec<String>> {
        let mut faults = Vec::new();
        if self.name.is_empty() {
            faults.push("事项名称 is empty".to_owned());
        } else if self.name.chars().count() > 200 {
            faults.push("事项名称 is longer than 200 characters".to_owned());
        }
        let category = match category_code(&self.category) {
            Ok(code) => Some(code),
            Err(e) if self.category.is_empty() => {
                faults
                    .push(format!("类别 is empty; {}", e.split_once('(').map_or("", |(_, l)| l).trim_end_matches(')')));
                None
            }
            Err(e) => {
                faults.push(e);
                None
            }
        };
        let code = normalize(&self.basic_code);
        if !(code.len() == 10 && code.bytes().all(|b| b.is_ascii_digit())) {
            faults.push(format!(
                "基本编码 {:?} is not 10 digits (2 of the category, 5 of the main item, 3 of the sub-item)",
                self.basic_code
            ));
        } else if let Some(c) = category
            && &code[..2] != c
        {
            faults.push(format!(
                "基本编码 {code} starts with {}, but 类别 {} has code {c}",
                &code[..2],
                category_name(c).unwrap_or(c)
            ));
        }
        if self.basis.chars().count() > 2000 {
            faults
                .push("实施依据 is longer than 2000 characters; cite the laws and articles, not their text".to_owned());
        } else if normalize(&self.basis).chars().count() < 4 {
            faults.push(
                "实施依据 is empty; cite the law and its article, such as 《中华人民共和国食品安全法》第三十五条"
                    .to_owned(),
            );
        }
        let levels = Levels::parse(&self.levels, own).map_err(|e| faults.push(e)).ok();
        let time_limit = TimeLimit::parse(&self.time_limit).map_err(|e| faults.push(e)).ok().flatten();
        if !faults.is_empty() {
            return Err(faults);
        }
        Ok(Item {
            name: self.name.clone(),
            category: category.and_then(category_name).unwrap_or_default().to_owned(),
            basic_code: code,
            basis: self.basis.clone(),
            subject: if self.subject.is_empty() { department.to_owned() } else { self.subject.clone() },
            levels: levels.unwrap_or_default(),
            time_limit,
            duties: self.duties.clone(),
            accountability: self.accountability.clone(),
        })
    }
}

/// An item as the provincial library holds it: which department lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub node: NodeId,
    pub item: Item,
}

/// One field of a lower level's item that differs from the province's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviation {
    pub basic_code: String,
    pub node: NodeId,
    /// 事项名称, 类别 or 实施依据.
    pub field: String,
    pub province: String,
    pub theirs: String,
}

/// The consistency report of a set of lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consistency {
    pub deviations: Vec<Deviation>,
    /// Items below the province with no provincial item of their 基本编码.
    pub without_province: Vec<Held>,
    /// Provincial items exercised at a lower level (层级) that no
    /// department of that level lists.
    pub not_below: Vec<Held>,
    /// Items compared with the province's and found the same, per node.
    pub consistent: Vec<(NodeId, u64)>,
    /// Items compared (or without counterpart), per node.
    pub compared: Vec<(NodeId, u64)>,
}

/// Compares every item below the province with the province's item of the
/// same 基本编码 (the first province department's, by node, when several
/// list it): name, category and legal basis, as normalized text.
pub fn consistency(held: &[Held]) -> Consistency {
    let level = |n: &NodeId| n.division().level();
    let mut province: Vec<&Held> = held.iter().filter(|h| level(&h.node) == DivisionLevel::Province).collect();
    province.sort_by(|a, b| (&a.item.basic_code, a.node.to_string()).cmp(&(&b.item.basic_code, b.node.to_string())));
    let mut by_code: std::collections::HashMap<&str, &Held> = std::collections::HashMap::new();
    for p in &province {
        by_code.entry(p.item.basic_code.as_str()).or_insert(p);
    }
    let reference = |code: &str| by_code.get(code).copied();
    // which codes each lower level lists
    let listed_at: std::collections::HashSet<(&str, bool)> = held
        .iter()
        .filter(|h| level(&h.node) != DivisionLevel::Province)
        .map(|h| (h.item.basic_code.as_str(), level(&h.node) == DivisionLevel::County))
        .collect();
    let mut out = Consistency::default();
    let mut tally: std::collections::BTreeMap<String, (NodeId, u64, u64)> = std::collections::BTreeMap::new();
    for h in held.iter().filter(|h| level(&h.node) != DivisionLevel::Province) {
        let t = tally.entry(h.node.to_string()).or_insert((h.node.clone(), 0, 0));
        t.1 += 1;
        let Some(p) = reference(&h.item.basic_code) else {
            out.without_province.push(h.clone());
            continue;
        };
        let mut same = true;
        for (field, ours, theirs) in [
            ("事项名称", &p.item.name, &h.item.name),
            ("类别", &p.item.category, &h.item.category),
            ("实施依据", &p.item.basis, &h.item.basis),
        ] {
            if normalize(ours) != normalize(theirs) {
                same = false;
                out.deviations.push(Deviation {
                    basic_code: h.item.basic_code.clone(),
                    node: h.node.clone(),
                    field: field.to_owned(),
                    province: ours.clone(),
                    theirs: theirs.clone(),
                });
            }
        }
        t.2 += u64::from(same);
    }
    let mut not_below: Vec<&Held> = by_code
        .iter()
        .filter(|(code, p)| {
            [DivisionLevel::Prefecture, DivisionLevel::County]
                .into_iter()
                .any(|lower| p.item.levels.has(lower) && !listed_at.contains(&(**code, lower == DivisionLevel::County)))
        })
        .map(|(_, p)| *p)
        .collect();
    not_below.sort_by(|a, b| a.item.basic_code.cmp(&b.item.basic_code));
    out.not_below = not_below.into_iter().cloned().collect();
    for (node, n, ok) in tally.into_values() {
        out.compared.push((node.clone(), n));
        out.consistent.push((node, ok));
    }
    out
}

/// The division a consistency view is narrowed to contains `node`.
pub fn within(division: Option<DivisionCode>, node: &NodeId) -> bool {
    division.is_none_or(|d| d.contains(node.division()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, category: &str, code: &str, basis: &str) -> RawItem {
        RawItem {
            name: name.into(),
            category: category.into(),
            basic_code: code.into(),
            basis: basis.into(),
            levels: "省级、市级、县级".into(),
            time_limit: "20个工作日".into(),
            ..RawItem::default()
        }
    }

    const BASIS: &str = "《中华人民共和国食品安全法》第三十五条";

    #[test]
    fn every_field_at_fault_has_its_message() {
        let ok =
            raw("食品经营许可", "行政许可", "0100101000", BASIS).check(DivisionLevel::County, "大通县市场监督管理局");
        let item = ok.unwrap();
        assert_eq!((item.category.as_str(), item.subject.as_str()), ("行政许可", "大通县市场监督管理局"));
        assert_eq!(item.time_limit, Some(TimeLimit::WorkingDays(20)));
        let mut bad = raw("", "行政许诺", "01001", "");
        bad.levels = "乡级".into();
        bad.time_limit = "尽快".into();
        let faults = bad.check(DivisionLevel::County, "x").unwrap_err();
        assert_eq!(faults.len(), 6, "{faults:?}");
        assert!(faults[0].contains("事项名称 is empty"));
        assert!(faults[1].contains("\"行政许诺\" is not one of the 11+X categories"));
        assert!(faults[2].contains("is not 10 digits"));
        assert!(faults[3].contains("实施依据 is empty"));
        assert!(faults[4].contains("层级 \"乡\""));
        assert!(faults[5].contains("办理时限 \"尽快\""));
        let wrong = raw("食品经营许可", "行政处罚", "0100101000", BASIS).check(DivisionLevel::County, "x").unwrap_err();
        assert_eq!(wrong, ["基本编码 0100101000 starts with 01, but 类别 行政处罚 has code 02"]);
    }

    #[test]
    fn categories_levels_and_time_limits_read_as_departments_write_them() {
        assert_eq!(category_code("行政征收（征用）"), Ok("04"));
        assert_eq!(category_code(" 行政征用 "), Ok("04"));
        assert_eq!(category_code("公共服务"), Ok("20"));
        assert_eq!(Levels::parse("省、州、县", DivisionLevel::County).unwrap().label(), "省级、市级、县级");
        assert_eq!(Levels::parse("", DivisionLevel::Prefecture).unwrap().label(), "市级");
        assert_eq!(TimeLimit::parse("即办"), Ok(Some(TimeLimit::Immediate)));
        assert_eq!(TimeLimit::parse("３０日"), Ok(Some(TimeLimit::Days(30))));
        assert_eq!(TimeLimit::parse(""), Ok(None));
        assert_eq!(TimeLimit::parse("/"), Ok(None));
        assert_eq!(TimeLimit::parse("法定20个工作日"), Ok(Some(TimeLimit::WorkingDays(20))));
        assert_eq!(
            Levels::parse("省、市（州）、县（市、区）", DivisionLevel::County).unwrap().label(),
            "省级、市级、县级"
        );
        assert_eq!(field_of_header("事项类型"), Some(1));
        assert_eq!(field_of_header(" 设定依据 "), Some(3));
        assert_eq!(field_of_header("备注"), None);
    }

    #[test]
    fn the_report_names_each_deviation_and_each_item_without_counterpart() {
        let at = |node: &str, name: &str, code: &str, basis: &str| Held {
            node: NodeId::parse(node).unwrap(),
            item: raw(name, "行政许可", code, basis)
                .check(NodeId::parse(node).unwrap().division().level(), "x")
                .unwrap(),
        };
        let old = "《中华人民共和国食品安全法》（2015年修订）第三十五条";
        let held = vec![
            at("630000/scjg", "食品经营许可", "0100101000", BASIS),
            at("630000/scjg", "药品零售企业许可", "0100102000", BASIS),
            at("630100/scjg", "食品经营许可", "0100101000", "《中华人民共和国食品安全法》第三十五条 "),
            at("630121/scjg", "食品经营许可证核发", "0100101000", BASIS),
            at("632523/scjg", "食品经营许可", "0100101000", old),
            at("632523/scjg", "小餐饮登记", "0100199000", BASIS),
        ];
        let r = consistency(&held);
        let dev: Vec<(String, &str)> = r.deviations.iter().map(|d| (d.node.to_string(), d.field.as_str())).collect();
        assert_eq!(dev, [("630121/scjg".to_owned(), "事项名称"), ("632523/scjg".to_owned(), "实施依据")]);
        assert_eq!(r.deviations[1].theirs, old);
        assert_eq!(r.without_province.len(), 1);
        assert_eq!(r.without_province[0].item.name, "小餐饮登记");
        let below: Vec<&str> = r.not_below.iter().map(|h| h.item.name.as_str()).collect();
        assert_eq!(below, ["药品零售企业许可"]);
        assert!(r.consistent.contains(&(NodeId::parse("630100/scjg").unwrap(), 1)));
        assert!(r.consistent.contains(&(NodeId::parse("632523/scjg").unwrap(), 0)));
    }
}
