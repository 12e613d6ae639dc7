//! Checking a value against its 信息项's [`ValueKind`]: the agent runs
//! [`check_value`] on every row it reads, and quarantines a row with a bad
//! value (the rows around it still sync). A value is also normalised as
//! its standard writes it (an ID number's `x` as `X`, a credit code in
//! upper case); what a check found worth keeping (the kind of identity
//! document) comes back with it.
//!
//! - 公民身份号码: GB 11643, every document of its layout
//!   ([`crate::idnumber::IdKind`]); a legacy 15-digit number is converted
//!   only when the resource allows it, and refused otherwise.
//! - 统一社会信用代码: GB 32100, with the embedded organisation code's check.
//! - 组织机构代码: GB 11714, `XXXXXXXX-X` or `XXXXXXXXX`.
//! - 行政区划代码: six digits of GB/T 2260 (any province; Qinghai's retired
//!   codes stay valid, as records carry them).
//! - 日期: a real calendar date, `YYYY-MM-DD` or `YYYYMMDD`.
//! - 手机号码: eleven digits starting `13`–`19`, an optional `+86`/`86` before.
//! - 邮政编码: six digits.

use super::ValueKind;
use crate::creditcode::CreditCode;
use crate::division::DivisionCode;
use crate::idnumber::{IdKind, IdNumber, parse_legacy};
use crate::units::is_real_date;

/// A value that passed its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The value as the standard writes it.
    pub value: String,
    /// For an identity number: the document it belongs to.
    pub id_kind: Option<IdKind>,
    /// A legacy 15-digit number was converted.
    pub converted: bool,
}

/// Checks `text` as a value of `kind`; `legacy_ids` allows a 15-digit
/// identity number (converted to 18); `today` is days since 1970-01-01.
/// The error is one sentence that names what is wrong.
pub fn check_value(kind: ValueKind, text: &str, legacy_ids: bool, today: i64) -> Result<Checked, String> {
    let plain = |value: String| Checked { value, id_kind: None, converted: false };
    let t = text.trim();
    match kind {
        ValueKind::IdNumber => {
            if t.len() == 15 && t.bytes().all(|b| b.is_ascii_digit()) {
                if !legacy_ids {
                    return Err(format!(
                        "{t:?} is a legacy 15-digit ID number; convert it in the source, or set legacy_ids = true on the resource"
                    ));
                }
                let id = parse_legacy(t, today).map_err(|e| e.to_string())?;
                return Ok(Checked { id_kind: Some(id.kind()), value: id.as_str().to_owned(), converted: true });
            }
            let (id, _) = IdNumber::parse(t, today).map_err(|e| e.to_string())?;
            Ok(Checked { id_kind: Some(id.kind()), value: id.as_str().to_owned(), converted: false })
        }
        ValueKind::CreditCode => CreditCode::parse(t).map(|c| plain(c.as_str().to_owned())).map_err(|e| e.to_string()),
        ValueKind::OrgCode => {
            let compact: String = t.chars().filter(|c| *c != '-').collect::<String>().to_ascii_uppercase();
            if compact.len() != 9 || !compact.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
                return Err(format!(
                    "organisation code {t:?} must be 9 characters (8 digits or letters and a check), such as 01560001-7"
                ));
            }
            let expected = crate::creditcode::org_check(&compact.as_bytes()[..8])
                .ok_or_else(|| format!("organisation code {t:?} holds a character outside 0-9 and A-Z"))?;
            if compact.as_bytes()[8] as char != expected {
                return Err(format!("organisation code {t} has a bad check character: expected {expected}"));
            }
            Ok(plain(format!("{}-{}", &compact[..8], &compact[8..])))
        }
        ValueKind::Division => DivisionCode::parse(t).map(|d| plain(d.to_string())).map_err(|e| e.to_string()),
        ValueKind::Date => {
            let digits: String = t.chars().filter(|c| *c != '-').collect();
            let shaped = (t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-') || t.len() == 8;
            let real = digits.len() == 8
                && digits.bytes().all(|b| b.is_ascii_digit())
                && is_real_date(
                    digits[..4].parse().unwrap_or(0),
                    digits[4..6].parse().unwrap_or(0),
                    digits[6..].parse().unwrap_or(0),
                );
            if !shaped || !real {
                return Err(format!("{t:?} is not a real date; write YYYY-MM-DD or YYYYMMDD"));
            }
            Ok(plain(t.to_owned()))
        }
        ValueKind::Mobile => {
            let n = t.strip_prefix("+86").or_else(|| t.strip_prefix("86").filter(|r| r.len() == 11)).unwrap_or(t);
            let n: String = n.chars().filter(|c| *c != ' ' && *c != '-').collect();
            if n.len() != 11
                || !n.bytes().all(|b| b.is_ascii_digit())
                || !matches!(&n[..2], "13" | "14" | "15" | "16" | "17" | "18" | "19")
            {
                return Err(format!("{t:?} is not a mainland mobile number (11 digits starting 13 to 19)"));
            }
            Ok(plain(n))
        }
        ValueKind::Postcode => {
            if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{t:?} is not a postcode (six digits)"));
            }
            Ok(plain(t.to_owned()))
        }
        ValueKind::Geometry => crate::geometry::parse(t).map(|_| plain(t.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-27
    const TODAY: i64 = 20_784;

    #[test]
    fn each_kind_accepts_and_refuses_as_its_standard_says() {
        use ValueKind::*;
        let cases: &[(ValueKind, &str, Option<&str>)] = &[
            (IdNumber, "11010519491231002X", Some("11010519491231002X")),
            (IdNumber, "11010519491231002x", Some("11010519491231002X")),
            (IdNumber, "440524188001010014", Some("440524188001010014")),
            (IdNumber, "110105194912310021", None),
            (IdNumber, "110105491231002", None),
            (CreditCode, "91350100M000100Y43", Some("91350100M000100Y43")),
            (CreditCode, "11630000015600017P", Some("11630000015600017P")),
            (CreditCode, "N2630121MA7G000129", Some("N2630121MA7G000129")),
            (CreditCode, "91350100M000100Y44", None),
            (CreditCode, "9135010OM000100Y43", None),
            (CreditCode, "91350100M000100Y56", None),
            (OrgCode, "01560001-7", Some("01560001-7")),
            (OrgCode, "015600017", Some("01560001-7")),
            (OrgCode, "01560001-8", None),
            (Division, "632522", Some("632522")),
            (Division, "630122", Some("630122")),
            (Division, "6325", None),
            (Division, "992522", None),
            (Date, "2026-02-28", Some("2026-02-28")),
            (Date, "20240229", Some("20240229")),
            (Date, "2026-02-29", None),
            (Date, "2026/02/28", None),
            (Mobile, "13800000001", Some("13800000001")),
            (Mobile, "+86 138-0000-0001", Some("13800000001")),
            (Mobile, "12800000001", None),
            (Mobile, "0971-1234567", None),
            (Postcode, "810000", Some("810000")),
            (Postcode, "81000", None),
        ];
        for (kind, text, want) in cases {
            let got = check_value(*kind, text, false, TODAY);
            match want {
                Some(v) => assert_eq!(got.map(|c| c.value).as_deref(), Ok(*v), "{kind} {text}"),
                None => assert!(got.is_err(), "{kind} {text}: {got:?}"),
            }
        }
    }

    #[test]
    fn identity_numbers_keep_their_document_and_legacy_numbers_convert_only_when_allowed() {
        let with_check =
            |first17: &str| format!("{first17}{}", crate::idnumber::check_char(first17.as_bytes()).unwrap());
        let hk = check_value(ValueKind::IdNumber, &with_check("81000019900101001"), false, TODAY).unwrap();
        assert_eq!(hk.id_kind, Some(IdKind::HongKong));
        let foreign = check_value(ValueKind::IdNumber, &with_check("91115619900101001"), false, TODAY).unwrap();
        assert_eq!(foreign.id_kind, Some(IdKind::ForeignPermanent));
        let refused = check_value(ValueKind::IdNumber, "110105491231002", false, TODAY).unwrap_err();
        assert!(refused.contains("legacy_ids = true"), "{refused}");
        let converted = check_value(ValueKind::IdNumber, "110105491231002", true, TODAY).unwrap();
        assert_eq!((converted.value.as_str(), converted.converted), ("11010519491231002X", true));
    }
}
