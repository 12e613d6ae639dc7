//! Catalogue entries (政务信息资源目录编制指南, GB/T 21063): the model and its
//! rules. Every field is checked, and an invalid entry is refused with one
//! message per field at fault, so a provider fixes everything in one pass.
//!
//! Values are written as the standard writes them (`有条件共享`, `每日`,
//! `C`), which is also how agents declare them in TOML.

use serde::{Deserialize, Serialize};

use crate::creditcode::CreditCode;
use crate::data::check_column_name;
use crate::node::NodeId;
use crate::units::{civil_from_days, is_real_date};

/// 信息资源分类: which catalogue an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogClass {
    #[serde(rename = "基础信息资源")]
    Base,
    #[serde(rename = "主题信息资源")]
    Theme,
    #[serde(rename = "部门信息资源")]
    Department,
}

/// 共享类型.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SharingType {
    #[serde(rename = "无条件共享")]
    Unconditional,
    #[serde(rename = "有条件共享")]
    Conditional,
    #[serde(rename = "不予共享")]
    NotShared,
}

/// 共享方式 (共享平台方式).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SharingMethod {
    #[serde(rename = "数据库")]
    Database,
    #[serde(rename = "接口")]
    Interface,
    #[serde(rename = "文件")]
    File,
}

/// 更新周期.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateCycle {
    #[serde(rename = "实时")]
    Realtime,
    #[serde(rename = "每日")]
    Daily,
    #[serde(rename = "每周")]
    Weekly,
    #[serde(rename = "每月")]
    Monthly,
    #[serde(rename = "每季度")]
    Quarterly,
    #[serde(rename = "每半年")]
    HalfYearly,
    #[serde(rename = "每年")]
    Yearly,
    #[serde(rename = "不定时")]
    Irregular,
}

impl UpdateCycle {
    /// Days without a change after which an entry is overdue (`None`: never).
    /// A 每日 resource with no change for 3 days is overdue; the others get
    /// their period plus the same slack in proportion.
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

/// 信息资源格式 分类.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FormatCategory {
    #[serde(rename = "电子文件")]
    ElectronicFile,
    #[serde(rename = "电子表格")]
    Spreadsheet,
    #[serde(rename = "数据库")]
    Database,
    #[serde(rename = "图形图像")]
    Image,
    #[serde(rename = "流媒体")]
    Streaming,
    #[serde(rename = "自描述格式")]
    SelfDescribing,
    #[serde(rename = "服务接口")]
    ServiceInterface,
}

/// 信息项 数据类型.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataType {
    /// 字符型
    C,
    /// 数值型
    N,
    /// 货币型
    Y,
    /// 日期型
    D,
    /// 日期时间型
    T,
    /// 逻辑型
    L,
    /// 备注型
    M,
    /// 通用型
    G,
    /// 双精度型
    B,
    /// 整型
    I,
    /// 浮点型
    F,
}

/// One 信息项.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoItem {
    /// 名称: the column name in the source.
    pub name: String,
    /// 数据类型.
    pub data_type: DataType,
    /// 数据长度.
    pub length: u32,
}

/// One catalogue entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// 信息资源代码 `前段码/后段码`.
    pub code: String,
    /// 信息资源分类: base, theme or department catalogue.
    pub class: CatalogClass,
    /// 类/项/目/细目 names, for example `["社会保障", "社会救助"]`.
    #[serde(default)]
    pub classification: Vec<String>,
    /// 信息资源名称.
    pub name: String,
    /// 信息资源提供方: the providing node.
    pub provider: NodeId,
    /// 提供方代码: the provider's 统一社会信用代码.
    pub provider_code: String,
    /// 信息资源摘要.
    #[serde(rename = "abstract")]
    pub summary: String,
    /// 信息资源格式 分类.
    pub format: FormatCategory,
    /// 信息资源格式 类型 (xlsx, csv, sqlite, kingbase, …).
    pub format_type: String,
    /// 信息项.
    pub items: Vec<InfoItem>,
    /// 共享类型.
    pub sharing_type: SharingType,
    /// 共享条件: required unless 无条件共享.
    #[serde(default)]
    pub sharing_condition: Option<String>,
    /// 共享方式.
    pub sharing_method: SharingMethod,
    /// 法律依据: required for 不予共享.
    #[serde(default)]
    pub legal_basis: Option<String>,
    /// 是否向社会开放.
    pub open_to_public: bool,
    /// 开放条件.
    #[serde(default)]
    pub open_condition: Option<String>,
    /// 更新周期.
    pub update_cycle: UpdateCycle,
    /// 发布日期 `YYYY-MM-DD`.
    pub published: String,
    /// 关联资源代码.
    #[serde(default)]
    pub related: Vec<String>,
}

/// A field at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Checks a 信息资源代码: 前段码 of 1 (类), 3 (项), 6 (目) or more (细目)
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
    /// Every rule of the guide; `today` is days since 1970-01-01.
    pub fn validate(&self, today: i64) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &'static str, message: String| errors.push(FieldError { field, message });
        if let Err(m) = check_code(&self.code) {
            fail("code", m);
        }
        if self.name.trim().is_empty() {
            fail("name", "信息资源名称 is empty".into());
        }
        if self.summary.trim().is_empty() {
            fail("abstract", "信息资源摘要 is empty; say in a sentence what the resource holds".into());
        }
        if let Err(e) = CreditCode::parse(&self.provider_code) {
            fail("provider_code", e.to_string());
        }
        if self.format_type.trim().is_empty() {
            fail("format_type", "信息资源格式 类型 is empty (xlsx, csv, sqlite, …)".into());
        }
        if self.items.is_empty() {
            fail("items", "an entry needs at least one 信息项".into());
        }
        let mut seen = std::collections::HashSet::new();
        for item in &self.items {
            if let Err(e) = check_column_name(&item.name) {
                fail("items", e.to_string());
            } else if !seen.insert(item.name.as_str()) {
                fail("items", format!("信息项 {:?} appears twice", item.name));
            }
            if item.length == 0 {
                fail("items", format!("信息项 {:?} has 数据长度 0", item.name));
            }
        }
        let blank = |o: &Option<String>| o.as_deref().is_none_or(|s| s.trim().is_empty());
        if self.sharing_type != SharingType::Unconditional && blank(&self.sharing_condition) {
            fail("sharing_condition", "共享条件 is required unless the entry is 无条件共享".into());
        }
        if self.sharing_type == SharingType::NotShared && blank(&self.legal_basis) {
            fail("legal_basis", "a 不予共享 entry must cite its 法律依据".into());
        }
        if self.class == CatalogClass::Base && self.sharing_type == SharingType::NotShared {
            fail("sharing_type", "基础信息资源 are shared; 不予共享 is not allowed for them".into());
        }
        if let Err(m) = check_date(&self.published, today) {
            fail("published", m);
        }
        for r in &self.related {
            if let Err(m) = check_code(r) {
                fail("related", m);
            } else if r == &self.code {
                fail("related", "an entry cannot be related to itself".into());
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn check_date(text: &str, today: i64) -> Result<(), String> {
    let bad = || format!("发布日期 {text:?} is not a date; write YYYY-MM-DD");
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !is_real_date(y, m, d) {
        return Err(bad());
    }
    if (y, m, d) > civil_from_days(today) {
        return Err(format!("发布日期 {text} is in the future"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i64 = 20_784; // 2026-11-27

    fn entry() -> CatalogEntry {
        serde_json::from_str(
            r#"{
                "code": "101001/000001",
                "class": "基础信息资源",
                "classification": ["人口", "户籍"],
                "name": "人口基本信息",
                "provider": "630000/gongan",
                "provider_code": "11630000015600017P",
                "abstract": "全省户籍人口的身份证号码、姓名、性别、民族、出生日期和住址",
                "format": "数据库",
                "format_type": "sqlite",
                "items": [
                    { "name": "id_number", "data_type": "C", "length": 18 },
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

    #[test]
    fn unknown_fields_and_values_are_refused() {
        let mut v: serde_json::Value = serde_json::to_value(entry()).unwrap();
        v["sharing_type"] = "随便共享".into();
        assert!(serde_json::from_value::<CatalogEntry>(v.clone()).is_err());
        v["sharing_type"] = "有条件共享".into();
        v["colour"] = "red".into();
        assert!(serde_json::from_value::<CatalogEntry>(v).is_err());
    }

    fn fields(e: &CatalogEntry) -> Vec<&'static str> {
        e.validate(TODAY).err().unwrap_or_default().into_iter().map(|f| f.field).collect()
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
            ("101", false),
            ("a01/1", false),
            ("101/", false),
        ] {
            assert_eq!(check_code(c).is_ok(), ok, "{c}");
        }
    }

    #[test]
    fn sharing_rules() {
        let mut e = entry();
        e.sharing_type = SharingType::Conditional;
        assert_eq!(fields(&e), ["sharing_condition"]);
        e.sharing_condition = Some("仅限社会救助审核使用".into());
        assert_eq!(fields(&e), Vec::<&str>::new());
        e.sharing_type = SharingType::NotShared;
        assert_eq!(fields(&e), ["legal_basis", "sharing_type"]);
        e.class = CatalogClass::Department;
        e.legal_basis = Some("《中华人民共和国居民身份证法》第十九条".into());
        assert_eq!(fields(&e), Vec::<&str>::new());
    }

    #[test]
    fn one_message_per_field_at_fault() {
        let mut e = entry();
        e.code = "10/1".into();
        e.name = " ".into();
        e.summary = String::new();
        e.provider_code = "91350100M000100Y44".into();
        e.items.push(InfoItem { name: "bad name".into(), data_type: DataType::C, length: 0 });
        e.published = "2026-02-30".into();
        e.related = vec!["x".into()];
        assert_eq!(fields(&e), ["code", "name", "abstract", "provider_code", "items", "items", "published", "related"]);
        e.published = "2099-01-01".into();
        assert!(e.validate(TODAY).unwrap_err().iter().any(|f| f.message.contains("future")));
    }

    #[test]
    fn overdue_thresholds() {
        assert_eq!(UpdateCycle::Daily.overdue_after_days(), Some(3));
        assert_eq!(UpdateCycle::Irregular.overdue_after_days(), None);
    }
}
