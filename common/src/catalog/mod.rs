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
    /// What a 信息项's values are (值类型), checked value by value where the
    /// data is read ([`kinds::check_value`]).
    ValueKind, "value kind (值类型)" {
        IdNumber = "公民身份号码" / "id_number",
        CreditCode = "统一社会信用代码" / "credit_code",
        OrgCode = "组织机构代码" / "org_code",
        Division = "行政区划代码" / "division",
        Date = "日期" / "date",
        Mobile = "手机号码" / "mobile",
        Postcode = "邮政编码" / "postcode",
        /// A geometry in WKT or GeoJSON, CGCS2000 longitude and latitude
        /// ([`crate::geometry`]).
        Geometry = "空间几何" / "geometry",
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
    /// What the values are (公民身份号码, 统一社会信用代码, …): each is checked
    /// where the data is read, and a row with a bad one is quarantined.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "值类型")]
    pub kind: Option<ValueKind>,
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

/// The bytes a provider signs (an error, never empty bytes).
pub fn encode_publication(p: &Publication) -> Result<Vec<u8>, String> {
    serde_json::to_vec(p).map_err(|e| format!("the catalogue entry cannot be encoded: {e}"))
}

/// Decodes signed bytes; never panics.
pub fn decode_publication(body: &[u8]) -> Result<Publication, String> {
    if body.len() > MAX_PUBLICATION_BYTES {
        return Err(format!("catalogue entry of {} bytes exceeds the limit of {MAX_PUBLICATION_BYTES}", body.len()));
    }
    serde_json::from_slice(body).map_err(|e| format!("malformed catalogue entry: {e}"))
}

pub mod kinds;
#[cfg(test)]
mod tests;
