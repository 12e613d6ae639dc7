//! Catalogue entries (政务信息资源目录编制指南, GB/T 21063): the model, its
//! rules, how an entry travels, how it is searched and how fresh it is.
//!
//! Every field is checked, and an invalid entry is refused with one message
//! per field at fault, so a provider fixes everything in one pass. Values are
//! written as the standard writes them (`有条件共享`, `每日`, `C`), which is
//! also how agents declare them in TOML; English aliases (`conditional`,
//! `daily`) are accepted on input for operators without a Chinese keyboard.
//!
//! An entry travels as a [`Publication`]: the entry, its version and whether
//! it is withdrawn, as JSON signed by the provider's agent. The same signed
//! bytes move up and down the hub hierarchy unchanged, so any hub can check
//! who published what.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::creditcode::CreditCode;
use crate::data::{ResourceCode, check_column_name};
use crate::node::NodeId;
use crate::units::parse_date;

/// Declares a closed set of values with the standard's spelling (used on the
/// wire and in output) and an English alias accepted on input.
macro_rules! labelled {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $label:literal / $alias:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $label, alias = $alias)] $variant),+
        }

        impl $name {
            /// Every value, in the standard's order.
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The standard's spelling.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let s = s.trim();
                $(if s == $label || s.eq_ignore_ascii_case($alias) { return Ok($name::$variant); })+
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.label()).collect();
                Err(format!("{s:?} is not a {}; use one of {}", $what, all.join(", ")))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

labelled!(
    /// 信息资源分类: which catalogue an entry belongs to.
    CatalogClass, "catalogue class (信息资源分类)" {
        Base = "基础信息资源" / "base",
        Theme = "主题信息资源" / "theme",
        Department = "部门信息资源" / "department",
    }
);

labelled!(
    /// 共享类型.
    SharingType, "sharing type (共享类型)" {
        Unconditional = "无条件共享" / "unconditional",
        Conditional = "有条件共享" / "conditional",
        NotShared = "不予共享" / "none",
    }
);

labelled!(
    /// 共享方式 (共享平台方式).
    SharingMethod, "sharing method (共享方式)" {
        Database = "数据库" / "database",
        Interface = "接口" / "interface",
        File = "文件" / "file",
    }
);

labelled!(
    /// 更新周期.
    UpdateCycle, "update cycle (更新周期)" {
        Realtime = "实时" / "realtime",
        Daily = "每日" / "daily",
        Weekly = "每周" / "weekly",
        Monthly = "每月" / "monthly",
        Quarterly = "每季度" / "quarterly",
        HalfYearly = "每半年" / "half-yearly",
        Yearly = "每年" / "yearly",
        Irregular = "不定时" / "irregular",
    }
);

labelled!(
    /// 信息资源格式 分类.
    FormatCategory, "format (信息资源格式)" {
        ElectronicFile = "电子文件" / "file",
        Spreadsheet = "电子表格" / "spreadsheet",
        Database = "数据库" / "database",
        Image = "图形图像" / "image",
        Streaming = "流媒体" / "streaming",
        SelfDescribing = "自描述格式" / "self-describing",
        ServiceInterface = "服务接口" / "interface",
    }
);

labelled!(
    /// 信息项 数据类型.
    DataType, "data type (数据类型)" {
        /// 字符型
        C = "C" / "字符型",
        /// 数值型
        N = "N" / "数值型",
        /// 货币型
        Y = "Y" / "货币型",
        /// 日期型
        D = "D" / "日期型",
        /// 日期时间型
        T = "T" / "日期时间型",
        /// 逻辑型
        L = "L" / "逻辑型",
        /// 备注型
        M = "M" / "备注型",
        /// 通用型
        G = "G" / "通用型",
        /// 双精度型
        B = "B" / "双精度型",
        /// 整型
        I = "I" / "整型",
        /// 浮点型
        F = "F" / "浮点型",
    }
);

impl UpdateCycle {
    /// Days without a change after which an entry is overdue (`None`: never).
    /// A 每日 resource with no change for 3 days is overdue; the others get
    /// their period plus slack in proportion. Kept in this one table.
    pub fn overdue_after_days(self) -> Option<i64> {
        match self {
            UpdateCycle::Realtime => Some(1),
            UpdateCycle::Daily => Some(3),
            UpdateCycle::Weekly => Some(10),
            UpdateCycle::Monthly => Some(35),
            UpdateCycle::Quarterly => Some(100),
            UpdateCycle::HalfYearly => Some(190),
            UpdateCycle::Yearly => Some(380),
            UpdateCycle::Irregular => None,
        }
    }
}

/// The five 基础信息资源 (the first level of a base entry's classification).
pub const BASE_RESOURCES: &[&str] = &["人口", "法人单位", "自然资源和空间地理", "社会信用", "电子证照"];

/// Levels of a classification: 类, 项, 目, 细目.
pub const CLASSIFICATION_LEVELS: usize = 4;

/// One 信息项.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoItem {
    /// 信息项名称, as readers see it (`公民身份号码`).
    #[serde(alias = "名称")]
    pub name: String,
    /// The source column it comes from (`id_number`); the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// 数据类型.
    #[serde(alias = "数据类型")]
    pub data_type: DataType,
    /// 数据长度.
    #[serde(alias = "数据长度")]
    pub length: u32,
    /// Personal data (ID numbers, phone numbers): masked in delivery unless
    /// a grant says otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not", alias = "敏感")]
    pub sensitive: bool,
}

impl InfoItem {
    /// The source column this item must match.
    pub fn column(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.name)
    }
}

/// One catalogue entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// 信息资源代码 `前段码/后段码`, unique in the province.
    #[serde(alias = "信息资源代码")]
    pub code: String,
    /// The provider's resource (vault table) this entry describes.
    pub resource: ResourceCode,
    /// 信息资源分类: base, theme or department catalogue.
    #[serde(alias = "信息资源分类")]
    pub class: CatalogClass,
    /// 类/项/目/细目 names, for example `["人口", "户籍人口"]`.
    #[serde(default, alias = "分类")]
    pub classification: Vec<String>,
    /// 信息资源名称.
    #[serde(alias = "信息资源名称")]
    pub name: String,
    /// 信息资源提供方: the providing node.
    #[serde(alias = "信息资源提供方")]
    pub provider: NodeId,
    /// The providing department's name (青海省公安厅).
    #[serde(alias = "提供方名称")]
    pub provider_name: String,
    /// 提供方代码: the provider's 统一社会信用代码.
    #[serde(alias = "提供方代码")]
    pub provider_code: String,
    /// 信息资源摘要.
    #[serde(rename = "abstract", alias = "信息资源摘要")]
    pub summary: String,
    /// 信息资源格式 分类.
    #[serde(alias = "信息资源格式")]
    pub format: FormatCategory,
    /// 信息资源格式 类型 (xlsx, csv, sqlite, kingbase, …).
    #[serde(alias = "格式类型")]
    pub format_type: String,
    /// 信息项.
    #[serde(alias = "信息项")]
    pub items: Vec<InfoItem>,
    /// 共享类型.
    #[serde(alias = "共享类型")]
    pub sharing_type: SharingType,
    /// 共享条件: required unless 无条件共享.
    #[serde(default, alias = "共享条件", skip_serializing_if = "Option::is_none")]
    pub sharing_condition: Option<String>,
    /// 共享方式.
    #[serde(alias = "共享方式")]
    pub sharing_method: SharingMethod,
    /// 法律依据: required for 不予共享.
    #[serde(default, alias = "法律依据", skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// 是否向社会开放.
    #[serde(alias = "是否向社会开放")]
    pub open_to_public: bool,
    /// 开放条件.
    #[serde(default, alias = "开放条件", skip_serializing_if = "Option::is_none")]
    pub open_condition: Option<String>,
    /// 更新周期.
    #[serde(alias = "更新周期")]
    pub update_cycle: UpdateCycle,
    /// 发布日期 `YYYY-MM-DD`.
    #[serde(alias = "发布日期")]
    pub published: String,
    /// 关联资源代码.
    #[serde(default, alias = "关联资源代码")]
    pub related: Vec<String>,
}

/// A field at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field as declared: `sharing_condition`, `items[2]`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks a 信息资源代码: a 前段码 of 1 (类), 3 (项), 6 (目) or more (细目)
/// digits, `/`, and a 后段码 of digits.
pub fn check_code(code: &str) -> Result<(), String> {
    let bad = || format!("{code:?} is not a resource code: write 前段码/后段码 in digits, such as 101001/000123");
    let (front, back) = code.split_once('/').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(front) || !digits(back) || matches!(front.len(), 2 | 4 | 5) {
        return Err(bad());
    }
    Ok(())
}

impl CatalogEntry {
    /// Every rule of the guide; `today` is days since 1970-01-01. On failure,
    /// one [`FieldError`] per field at fault, in declaration order.
    pub fn validate(&self, today: i64) -> Result<(), Vec<FieldError>> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut fail = |field: String, message: String| match errors.iter_mut().find(|e| e.field == field) {
            Some(e) => {
                e.message.push_str("; ");
                e.message.push_str(&message);
            }
            None => errors.push(FieldError { field, message }),
        };
        if let Err(m) = check_code(&self.code) {
            fail("code".into(), m);
        }
        match self.classification.len() {
            0 => fail("classification".into(), "name at least the 类 of the entry, such as [\"人口\"]".into()),
            n if n > CLASSIFICATION_LEVELS => fail(
                "classification".into(),
                format!("{n} levels given; a classification has at most 4 (类, 项, 目, 细目)"),
            ),
            _ if self.classification.iter().any(|c| c.trim().is_empty()) => {
                fail("classification".into(), "a level of the classification is empty".into());
            }
            _ => {}
        }
        if self.class == CatalogClass::Base
            && self.classification.first().is_some_and(|c| !BASE_RESOURCES.contains(&c.as_str()))
        {
            fail(
                "classification".into(),
                format!("a 基础信息资源 is classed under one of {}", BASE_RESOURCES.join(", ")),
            );
        }
        if self.name.trim().is_empty() {
            fail("name".into(), "信息资源名称 is empty".into());
        }
        if self.provider_name.trim().is_empty() {
            fail("provider_name".into(), "name the providing department, such as 青海省公安厅".into());
        }
        if let Err(e) = CreditCode::parse(&self.provider_code) {
            fail("provider_code".into(), format!("提供方代码 must be the provider's 统一社会信用代码: {e}"));
        }
        if self.summary.trim().is_empty() {
            fail("abstract".into(), "信息资源摘要 is empty; say in a sentence what the resource holds".into());
        }
        if self.format_type.trim().is_empty() {
            fail("format_type".into(), "信息资源格式 类型 is empty (xlsx, csv, sqlite, …)".into());
        }
        if self.items.is_empty() {
            fail("items".into(), "an entry needs at least one 信息项".into());
        }
        let (mut names, mut columns) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        for (i, item) in self.items.iter().enumerate() {
            let field = format!("items[{}]", i + 1);
            if item.name.trim().is_empty() {
                fail(field.clone(), "信息项名称 is empty".into());
            } else if !names.insert(item.name.as_str()) {
                fail(field.clone(), format!("信息项 {:?} appears twice", item.name));
            }
            if let Err(e) = check_column_name(item.column()) {
                fail(field.clone(), e.to_string());
            } else if !columns.insert(item.column().to_lowercase()) {
                fail(field.clone(), format!("column {:?} is used by two 信息项", item.column()));
            }
            if item.length == 0 {
                fail(field, format!("信息项 {:?} has 数据长度 0; give its maximum length", item.name));
            }
        }
        let blank = |o: &Option<String>| o.as_deref().is_none_or(|s| s.trim().is_empty());
        if self.sharing_type != SharingType::Unconditional && blank(&self.sharing_condition) {
            fail("sharing_condition".into(), format!("共享条件 is required for a {} entry", self.sharing_type));
        }
        if self.sharing_type == SharingType::NotShared && blank(&self.legal_basis) {
            fail("legal_basis".into(), "a 不予共享 entry must cite its 法律依据".into());
        }
        if self.class == CatalogClass::Base && self.sharing_type != SharingType::Unconditional {
            fail(
                "sharing_type".into(),
                "基础信息资源 are shared unconditionally (国发〔2016〕51号); catalogue conditional items in a 主题 or 部门 entry".into(),
            );
        }
        if self.open_to_public && self.sharing_type == SharingType::NotShared {
            fail("open_to_public".into(), "a 不予共享 entry cannot be open to the public".into());
        }
        match parse_date(&self.published) {
            Err(_) => {
                fail("published".into(), format!("发布日期 {:?} is not a date; write YYYY-MM-DD", self.published))
            }
            Ok(day) if day > today => fail("published".into(), format!("发布日期 {} is in the future", self.published)),
            Ok(_) => {}
        }
        for r in &self.related {
            if let Err(m) = check_code(r) {
                fail("related".into(), m);
            } else if r == &self.code {
                fail("related".into(), "an entry cannot be related to itself".into());
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Compares the 信息项 with the source's columns: every item needs its
    /// column and every column its item (column names compare
    /// case-insensitively, as SQLite does). The error names both sides.
    pub fn check_columns(&self, source_columns: &[&str]) -> Result<(), String> {
        let lower = |s: &str| s.to_lowercase();
        let have: Vec<String> = source_columns.iter().map(|c| lower(c)).collect();
        let declared: Vec<String> = self.items.iter().map(|i| lower(i.column())).collect();
        let missing: Vec<&str> =
            self.items.iter().filter(|i| !have.contains(&lower(i.column()))).map(InfoItem::column).collect();
        let extra: Vec<&str> = source_columns.iter().copied().filter(|c| !declared.contains(&lower(c))).collect();
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("信息项 with no source column: {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            problems.push(format!("source columns with no 信息项: {}", extra.join(", ")));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(format!(
            "catalogue entry {} does not match the source ({}); make the entry's items and the source's columns the same",
            self.code,
            problems.join("; ")
        ))
    }

    /// The text that search looks in: names, abstract, classification,
    /// information items, provider, the entry's code and the resource code.
    pub fn search_text(&self) -> String {
        let mut parts: Vec<&str> =
            vec![&self.name, &self.summary, &self.provider_name, &self.code, self.resource.as_str()];
        parts.extend(self.classification.iter().map(String::as_str));
        for item in &self.items {
            parts.push(&item.name);
            parts.push(item.column());
        }
        let provider = self.provider.to_string();
        parts.push(&provider);
        parts.join("\u{1f}")
    }
}

/// Splits a search query into terms: whitespace (including the ideographic
/// space) and Chinese or ASCII commas separate them; every term must match.
pub fn search_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for t in query.split(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、' | ';' | '；')) {
        if !t.is_empty() && !terms.iter().any(|x| x == t) {
            terms.push(t.to_owned());
        }
    }
    terms
}

/// How current an entry's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Freshness {
    /// When its data last changed at the hub (Unix seconds), if ever.
    pub last_change: Option<i64>,
    /// No change for longer than its update cycle allows.
    pub overdue: bool,
    /// When it becomes (or became) overdue; `None` for 不定时.
    pub due_by: Option<i64>,
}

/// The freshness of data with `cycle` that last changed at `last_change`
/// (or, never having changed, was catalogued at `listed_at`), as of `now`.
pub fn freshness(cycle: UpdateCycle, last_change: Option<i64>, listed_at: i64, now: i64) -> Freshness {
    let since = last_change.unwrap_or(listed_at);
    let due_by = cycle.overdue_after_days().map(|d| since + d * 86_400);
    Freshness { last_change, overdue: due_by.is_some_and(|t| now >= t), due_by }
}

/// An entry as its provider publishes it: the version rises with every
/// change, and withdrawal is a publication of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    pub version: u64,
    pub withdrawn: bool,
    pub entry: CatalogEntry,
}

/// Largest encoded publication accepted.
pub const MAX_PUBLICATION_BYTES: usize = 1024 * 1024;

/// The bytes a provider signs.
pub fn encode_publication(p: &Publication) -> Vec<u8> {
    serde_json::to_vec(p).unwrap_or_default()
}

/// Decodes signed bytes; never panics.
pub fn decode_publication(body: &[u8]) -> Result<Publication, String> {
    if body.len() > MAX_PUBLICATION_BYTES {
        return Err(format!("catalogue entry of {} bytes exceeds the limit of {MAX_PUBLICATION_BYTES}", body.len()));
    }
    serde_json::from_slice(body).map_err(|e| format!("malformed catalogue entry: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i64 = 20_784; // 2026-11-27

    pub(crate) fn entry() -> CatalogEntry {
        serde_json::from_str(
            r#"{
                "code": "101001/000001",
                "resource": "hukou",
                "class": "基础信息资源",
                "classification": ["人口", "户籍人口"],
                "name": "人口基本信息",
                "provider": "630000/gongan",
                "provider_name": "青海省公安厅",
                "provider_code": "11630000015600017P",
                "abstract": "全省户籍人口的身份证号码、姓名、性别、民族、出生日期和住址",
                "format": "数据库",
                "format_type": "sqlite",
                "items": [
                    { "name": "公民身份号码", "column": "id_number", "data_type": "C", "length": 18 },
                    { "name": "姓名", "data_type": "C", "length": 50 }
                ],
                "sharing_type": "无条件共享",
                "sharing_method": "接口",
                "open_to_public": false,
                "update_cycle": "每日",
                "published": "2026-11-01"
            }"#,
        )
        .unwrap()
    }

    fn fields(e: &CatalogEntry) -> Vec<String> {
        e.validate(TODAY).err().unwrap_or_default().into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        let mut v: serde_json::Value = serde_json::to_value(entry()).unwrap();
        v["sharing_type"] = "随便共享".into();
        assert!(serde_json::from_value::<CatalogEntry>(v.clone()).is_err());
        v["sharing_type"] = "conditional".into();
        assert_eq!(serde_json::from_value::<CatalogEntry>(v.clone()).unwrap().sharing_type, SharingType::Conditional);
        v["colour"] = "red".into();
        assert!(serde_json::from_value::<CatalogEntry>(v).is_err());
    }

    #[test]
    fn chinese_keys_are_accepted() {
        let mut v: serde_json::Value = serde_json::to_value(entry()).unwrap();
        let name = v.as_object_mut().unwrap().remove("name").unwrap();
        v["信息资源名称"] = name;
        assert_eq!(serde_json::from_value::<CatalogEntry>(v).unwrap(), entry());
    }

    #[test]
    fn a_good_entry_passes() {
        assert_eq!(entry().validate(TODAY), Ok(()));
    }

    #[test]
    fn codes() {
        for (c, ok) in [
            ("1/1", true),
            ("101/000123", true),
            ("101001/1", true),
            ("1010012/9", true),
            ("10/1", false),
            ("1010/1", false),
            ("10100/1", false),
            ("101", false),
            ("a01/1", false),
            ("101/", false),
            ("/1", false),
            ("101/1/2", false),
            ("１01/1", false),
        ] {
            assert_eq!(check_code(c).is_ok(), ok, "{c}");
        }
    }

    #[test]
    fn sharing_rules() {
        let mut e = entry();
        e.sharing_type = SharingType::Conditional;
        assert_eq!(fields(&e), ["sharing_condition", "sharing_type"], "base resources are unconditional");
        e.class = CatalogClass::Theme;
        e.classification = vec!["社会保障".into()];
        assert_eq!(fields(&e), ["sharing_condition"]);
        e.sharing_condition = Some("仅限社会救助审核使用".into());
        assert_eq!(fields(&e), Vec::<String>::new());
        e.sharing_type = SharingType::NotShared;
        assert_eq!(fields(&e), ["legal_basis"]);
        e.class = CatalogClass::Base;
        e.classification = vec!["人口".into()];
        assert_eq!(fields(&e), ["legal_basis", "sharing_type"]);
        e.class = CatalogClass::Department;
        e.legal_basis = Some("《中华人民共和国居民身份证法》第十九条".into());
        assert_eq!(fields(&e), Vec::<String>::new());
        e.open_to_public = true;
        assert_eq!(fields(&e), ["open_to_public"]);
    }

    #[test]
    fn classification_rules() {
        let mut e = entry();
        e.classification = vec![];
        assert_eq!(fields(&e), ["classification"]);
        e.classification = vec!["人口".into(), "a".into(), "b".into(), "c".into(), "d".into()];
        assert_eq!(fields(&e), ["classification"]);
        e.classification = vec!["社会保障".into()];
        assert_eq!(fields(&e), ["classification"], "a base entry outside the five base resources");
        e.class = CatalogClass::Theme;
        assert_eq!(fields(&e), Vec::<String>::new());
    }

    #[test]
    fn item_rules_name_the_item() {
        let mut e = entry();
        e.items.push(InfoItem {
            name: "姓名".into(),
            column: Some("xm".into()),
            data_type: DataType::C,
            length: 0,
            sensitive: false,
        });
        e.items.push(InfoItem {
            name: "住址".into(),
            column: Some("ID_NUMBER".into()),
            data_type: DataType::C,
            length: 9,
            sensitive: false,
        });
        e.items.push(InfoItem {
            name: "bad name".into(),
            column: None,
            data_type: DataType::N,
            length: 3,
            sensitive: false,
        });
        let errs = e.validate(TODAY).unwrap_err();
        let f: Vec<&str> = errs.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(f, ["items[3]", "items[4]", "items[5]"]);
        assert!(errs[0].message.contains("appears twice") && errs[0].message.contains("数据长度 0"), "{}", errs[0]);
        assert!(errs[1].message.contains("used by two"));
        e.items.clear();
        assert_eq!(fields(&e), ["items"]);
    }

    #[test]
    fn one_message_per_field_at_fault() {
        let mut e = entry();
        e.code = "10/1".into();
        e.name = " ".into();
        e.summary = String::new();
        e.provider_code = "91350100M000100Y44".into();
        e.provider_name = String::new();
        e.format_type = " ".into();
        e.published = "2026-02-30".into();
        e.related = vec!["x".into(), "101001/000001".into()];
        assert_eq!(
            fields(&e),
            ["code", "name", "provider_name", "provider_code", "abstract", "format_type", "published", "related"]
        );
        e.published = "2099-01-01".into();
        assert!(e.validate(TODAY).unwrap_err().iter().any(|f| f.message.contains("future")));
    }

    #[test]
    fn items_are_matched_against_the_source() {
        let e = entry();
        assert_eq!(e.check_columns(&["ID_NUMBER", "姓名"]), Ok(()));
        let err = e.check_columns(&["id_number", "xm", "address"]).unwrap_err();
        assert!(err.contains("no source column: 姓名") && err.contains("no 信息项: xm, address"), "{err}");
    }

    #[test]
    fn search_terms_and_two_character_chinese() {
        assert_eq!(search_terms(" 人口  户籍，法人、 人口"), ["人口", "户籍", "法人"]);
        assert_eq!(search_terms("人口\u{3000}基本"), ["人口", "基本"]);
        // what the hub's search looks in: names, abstract, items, columns, codes
        let text = entry().search_text();
        for found in ["人口", "身份", "姓名", "id_number", "户籍人口", "hukou", "101001/000001", "630000/gongan"]
        {
            assert!(text.contains(found), "{found}");
        }
        assert!(!text.contains("法人"));
    }

    #[test]
    fn labels_parse_in_chinese_and_english() {
        assert_eq!("每日".parse::<UpdateCycle>(), Ok(UpdateCycle::Daily));
        assert_eq!("Daily".parse::<UpdateCycle>(), Ok(UpdateCycle::Daily));
        assert_eq!("base".parse::<CatalogClass>(), Ok(CatalogClass::Base));
        let e = "sometimes".parse::<UpdateCycle>().unwrap_err();
        assert!(e.contains("每日") && e.contains("不定时"), "{e}");
    }

    #[test]
    fn overdue_after_the_cycle() {
        let day = 86_400;
        let f = freshness(UpdateCycle::Daily, Some(10 * day), 0, 12 * day + 1);
        assert!(!f.overdue);
        assert_eq!(f.due_by, Some(13 * day));
        assert!(freshness(UpdateCycle::Daily, Some(10 * day), 0, 13 * day).overdue);
        // never changed: counted from when it was catalogued
        assert!(freshness(UpdateCycle::Weekly, None, 0, 10 * day).overdue);
        assert!(!freshness(UpdateCycle::Weekly, None, 0, 9 * day).overdue);
        assert!(!freshness(UpdateCycle::Irregular, None, 0, 10_000 * day).overdue);
    }

    #[test]
    fn publications_round_trip_and_bad_bytes_are_errors() {
        let p = Publication { version: 3, withdrawn: false, entry: entry() };
        assert_eq!(decode_publication(&encode_publication(&p)), Ok(p));
        assert!(decode_publication(b"{").is_err());
        assert!(decode_publication(&vec![b' '; MAX_PUBLICATION_BYTES + 1]).is_err());
    }
}
