//! 公民身份号码 (GB 11643-1999): the key of the population base.
//!
//! 18 characters: a 6-digit address code (GB/T 2260, where the number was
//! assigned; retired codes stay valid), the birth date `YYYYMMDD`, a 3-digit
//! sequence (odd = male, even = female) and a check character computed with
//! ISO 7064 MOD 11-2. [`IdNumber::parse`] checks length, digits, the check
//! character, a real date not in the future and a known province prefix; an
//! address code missing from the current division table is only a warning.
//! Legacy 15-digit numbers are recognised by [`parse_legacy`] and converted
//! only on request.
//!
//! The same layout and check serve other documents ([`IdKind`]): the
//! residence permits of Hong Kong, Macao and Taiwan residents (address code
//! 810000, 820000, 830000) and the foreign permanent resident ID card of
//! 2023 (`9`, the issuing province's two digits, a three-digit nationality
//! code, then birth date, sequence and check as above).

use std::fmt;

use crate::division::DivisionCode;
use crate::units::{civil_from_days, is_real_date};

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// A valid 18-character ID number, uppercase `X`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(String);

/// Why a string is not a valid ID number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("ID number {0:?} must have 18 characters (17 digits and a check digit or X)")]
    Length(String),
    #[error("ID number {0:?} may hold only digits, with X allowed as the last character")]
    Characters(String),
    #[error("ID number {0} has a bad check character: expected {1}")]
    Check(String, char),
    #[error("ID number {0} holds no real birth date ({1})")]
    Date(String, String),
    #[error("ID number {0} has a birth date in the future")]
    Future(String),
    #[error("ID number {0} starts with {1}, which is not a province code")]
    Province(String, String),
}

/// Which document a valid number belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// 居民身份证.
    Mainland,
    /// 港澳台居民居住证 of a Hong Kong resident (810000).
    HongKong,
    /// 港澳台居民居住证 of a Macao resident (820000).
    Macao,
    /// 港澳台居民居住证 of a Taiwan resident (830000).
    Taiwan,
    /// 外国人永久居留身份证, 2023 edition.
    ForeignPermanent,
}

impl IdKind {
    /// The document's name.
    pub fn label(self) -> &'static str {
        match self {
            IdKind::Mainland => "居民身份证",
            IdKind::HongKong => "港澳台居民居住证（香港居民）",
            IdKind::Macao => "港澳台居民居住证（澳门居民）",
            IdKind::Taiwan => "港澳台居民居住证（台湾居民）",
            IdKind::ForeignPermanent => "外国人永久居留身份证",
        }
    }

    /// The kind of an 18-character number by its first six characters.
    fn of(s: &str) -> Self {
        match &s[..6] {
            "810000" => IdKind::HongKong,
            "820000" => IdKind::Macao,
            "830000" => IdKind::Taiwan,
            _ if s.starts_with('9') => IdKind::ForeignPermanent,
            _ => IdKind::Mainland,
        }
    }
}

/// Something worth telling about a valid number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdWarning {
    /// The address code is not a current division (retired or unknown).
    AddressCode(String),
}

/// The check character of the first 17 digits.
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let s: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(CHECK[(s % 11) as usize] as char)
}

impl IdNumber {
    /// Parses and validates; `today` is days since 1970-01-01.
    pub fn parse(text: &str, today: i64) -> Result<(Self, Vec<IdWarning>), IdError> {
        let s = text.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(IdError::Length(text.to_owned()));
        }
        let b = s.as_bytes();
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(IdError::Characters(text.to_owned()));
        }
        let expected = check_char(&b[..17]).ok_or_else(|| IdError::Characters(text.to_owned()))?;
        if b[17] as char != expected {
            return Err(IdError::Check(s, expected));
        }
        check_date(&s, &s[6..14], today)?;
        let warnings = address_warnings(&s)?;
        Ok((Self(s), warnings))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document it belongs to.
    pub fn kind(&self) -> IdKind {
        IdKind::of(&self.0)
    }

    /// True for an odd sequence number.
    pub fn is_male(&self) -> bool {
        self.0.as_bytes()[16] % 2 == 1
    }
}

/// Recognises a legacy 15-digit number (`YYMMDD` birth date, no check) and
/// returns its 18-character form.
pub fn parse_legacy(text: &str, today: i64) -> Result<IdNumber, IdError> {
    let s = text.trim();
    if s.len() != 15 {
        return Err(IdError::Length(text.to_owned()));
    }
    if !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(IdError::Characters(text.to_owned()));
    }
    let mut long = format!("{}19{}", &s[..6], &s[6..]);
    let c = check_char(long.as_bytes()).ok_or_else(|| IdError::Characters(text.to_owned()))?;
    long.push(c);
    Ok(IdNumber::parse(&long, today)?.0)
}

fn check_date(s: &str, date: &str, today: i64) -> Result<(), IdError> {
    let y: i64 = date[..4].parse().unwrap_or(0);
    let m: u32 = date[4..6].parse().unwrap_or(0);
    let d: u32 = date[6..8].parse().unwrap_or(0);
    if y < 1800 || !is_real_date(y, m, d) {
        return Err(IdError::Date(s.to_owned(), date.to_owned()));
    }
    let (ty, tm, td) = civil_from_days(today);
    if (y, m, d) > (ty, tm, td) {
        return Err(IdError::Future(s.to_owned()));
    }
    Ok(())
}

fn address_warnings(s: &str) -> Result<Vec<IdWarning>, IdError> {
    match IdKind::of(s) {
        IdKind::HongKong | IdKind::Macao | IdKind::Taiwan => return Ok(Vec::new()),
        // the issuing province's two digits follow the 9
        IdKind::ForeignPermanent => {
            return DivisionCode::parse(&format!("{}0000", &s[1..3]))
                .map(|_| Vec::new())
                .map_err(|_| IdError::Province(s.to_owned(), s[1..3].to_owned()));
        }
        IdKind::Mainland => {}
    }
    let code = DivisionCode::parse(&s[..6]).map_err(|_| IdError::Province(s.to_owned(), s[..2].to_owned()))?;
    // Only Qinghai's table is bundled: elsewhere an unknown code is not news.
    if s.starts_with("63") && !code.is_current() {
        return Ok(vec![IdWarning::AddressCode(s[..6].to_owned())]);
    }
    Ok(Vec::new())
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-27
    const TODAY: i64 = 20_784;

    #[test]
    fn standard_vectors() {
        for (n, ok) in [
            ("11010519491231002X", true),
            ("440524188001010014", true),
            ("11010219840406970X", true),
            ("110105194912310021", false),
            ("440524188001010015", false),
            ("11010519491231002x", true),
        ] {
            assert_eq!(IdNumber::parse(n, TODAY).is_ok(), ok, "{n}");
        }
        assert_eq!(IdNumber::parse("11010519491231002x", TODAY).unwrap().0.as_str(), "11010519491231002X");
        assert!(matches!(IdNumber::parse("110105194912310021", TODAY), Err(IdError::Check(_, 'X'))));
    }

    #[test]
    fn other_rules() {
        let with_check = |first17: &str| format!("{first17}{}", check_char(first17.as_bytes()).unwrap());
        assert!(matches!(IdNumber::parse("1234", TODAY), Err(IdError::Length(_))));
        assert!(matches!(IdNumber::parse("11010519491231X02X", TODAY), Err(IdError::Characters(_))));
        assert!(matches!(IdNumber::parse(&with_check("11010519490230002"), TODAY), Err(IdError::Date(..))));
        assert!(IdNumber::parse(&with_check("11010520000229002"), TODAY).is_ok(), "leap day");
        assert!(matches!(IdNumber::parse(&with_check("11010519000229002"), TODAY), Err(IdError::Date(..))));
        assert!(matches!(IdNumber::parse(&with_check("11010520991231002"), TODAY), Err(IdError::Future(_))));
        assert!(matches!(IdNumber::parse(&with_check("99010519491231002"), TODAY), Err(IdError::Province(..))));
        let (id, w) = IdNumber::parse(&with_check("63252219900101001"), TODAY).unwrap();
        assert!(w.is_empty() && id.is_male());
        let (_, w) = IdNumber::parse(&with_check("63012219900101002"), TODAY).unwrap();
        assert_eq!(w, vec![IdWarning::AddressCode("630122".into())], "retired 湟中县 is valid with a warning");
    }

    #[test]
    fn every_document_of_the_layout_is_recognised() {
        let with_check = |first17: &str| format!("{first17}{}", check_char(first17.as_bytes()).unwrap());
        for (first17, kind) in [
            ("11010519491231002", IdKind::Mainland),
            ("44052418800101001", IdKind::Mainland),
            ("81000019900101001", IdKind::HongKong),
            ("82000019851231002", IdKind::Macao),
            ("83000020000229003", IdKind::Taiwan),
            // 9, issued in 北京 (11), nationality 156, born 1990-01-01
            ("91115619900101001", IdKind::ForeignPermanent),
            ("96384019750615002", IdKind::ForeignPermanent),
        ] {
            let (id, _) = IdNumber::parse(&with_check(first17), TODAY).unwrap_or_else(|e| panic!("{first17}: {e}"));
            assert_eq!(id.kind(), kind, "{first17}");
        }
        // a foreign card names a real province after its 9, and keeps the check and the date
        assert!(matches!(IdNumber::parse(&with_check("90015619900101001"), TODAY), Err(IdError::Province(..))));
        assert!(matches!(IdNumber::parse(&with_check("91115619901301001"), TODAY), Err(IdError::Date(..))));
        let good = with_check("83000020000229003");
        let bad = format!("{}{}", &good[..17], if good.ends_with('0') { '1' } else { '0' });
        assert!(matches!(IdNumber::parse(&bad, TODAY), Err(IdError::Check(..))));
    }

    #[test]
    fn legacy_numbers_convert_on_request() {
        let id = parse_legacy("110105491231002", TODAY).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert!(parse_legacy("11010549123100", TODAY).is_err());
    }
}
