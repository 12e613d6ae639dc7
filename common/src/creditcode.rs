//! 统一社会信用代码 (GB 32100-2015): the key of the legal-person base.
//!
//! 18 characters over a 31-symbol alphabet (`0-9` and `A-Y` without I, O,
//! Z, S, V): registering authority (1), organisation category (1), the
//! registering office's division code (6), the embedded GB 11714
//! organisation code (9, with its own check character), and a check
//! character. [`CreditCode::parse`] checks all of it.

use std::fmt;

/// The 31 symbols; a symbol's value is its index.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Registering authorities and the organisation categories each allows
/// (`None`: any category). One table, easy to change.
pub const AUTHORITIES: &[(char, &str, Option<&str>)] = &[
    ('1', "机构编制", Some("1239")),
    ('2', "外交", None),
    ('3', "司法行政", None),
    ('4', "文化", None),
    ('5', "民政", Some("1239")),
    ('6', "旅游", None),
    ('7', "宗教", None),
    ('8', "工会", None),
    ('9', "工商", Some("123")),
    ('A', "中央军委改革和编制办公室", None),
    ('N', "农业", Some("1239")),
    ('Y', "其他", None),
];

/// A valid credit code.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

/// Why a string is not a valid credit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    #[error("credit code {0:?} must have 18 characters")]
    Length(String),
    #[error("credit code {0:?} holds {1:?}, which is not allowed (digits and A-Y without I, O, Z, S, V)")]
    Character(String, char),
    #[error("credit code {0} has an unknown registering authority {1:?}")]
    Authority(String, char),
    #[error("credit code {0} has category {1:?}, which authority {2:?} does not use")]
    Category(String, char, char),
    #[error("credit code {0} has a bad check character: expected {1}")]
    Check(String, char),
    #[error("credit code {0} embeds organisation code {1} whose check character is wrong (expected {2})")]
    OrgCheck(String, String, char),
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u32)
}

/// The check character (position 18) of the first 17 characters.
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        sum += value(*c)? * w;
    }
    Some(ALPHABET[((31 - sum % 31) % 31) as usize] as char)
}

/// The GB 11714 check character of an organisation code's first 8 characters.
pub(crate) fn org_check(first8: &[u8]) -> Option<char> {
    let mut sum = 0;
    for (c, w) in first8.iter().zip(ORG_WEIGHTS) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10)?,
    })
}

impl CreditCode {
    /// Parses and validates (surrounding spaces ignored, letters uppercased).
    pub fn parse(text: &str) -> Result<Self, CreditCodeError> {
        let s = text.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(CreditCodeError::Length(text.to_owned()));
        }
        if let Some(bad) = s.chars().find(|c| !c.is_ascii() || value(*c as u8).is_none()) {
            return Err(CreditCodeError::Character(s.clone(), bad));
        }
        let b = s.as_bytes();
        let (auth, cat) = (b[0] as char, b[1] as char);
        match AUTHORITIES.iter().find(|a| a.0 == auth) {
            None => return Err(CreditCodeError::Authority(s, auth)),
            Some((_, _, Some(cats))) if !cats.contains(cat) => return Err(CreditCodeError::Category(s, cat, auth)),
            Some(_) => {}
        }
        let expected = check_char(&b[..17]).ok_or_else(|| CreditCodeError::Length(text.to_owned()))?;
        if b[17] as char != expected {
            return Err(CreditCodeError::Check(s, expected));
        }
        let org = &s[8..17];
        let org_expected = org_check(&b[8..16]).ok_or_else(|| CreditCodeError::Length(text.to_owned()))?;
        if b[16] as char != org_expected {
            return Err(CreditCodeError::OrgCheck(s.clone(), org.to_owned(), org_expected));
        }
        Ok(Self(s))
    }

    /// Builds a valid code from its first 8 characters (authority, category,
    /// division) and the first 8 characters of the embedded organisation
    /// code, computing both check characters. For generated data.
    pub fn compose(head: &str, org: &str) -> Result<Self, CreditCodeError> {
        let bad = || CreditCodeError::Length(format!("{head}{org}"));
        if head.len() != 8 || org.len() != 8 {
            return Err(bad());
        }
        let org_check = org_check(org.as_bytes()).ok_or_else(bad)?;
        let first17 = format!("{head}{org}{org_check}");
        let check = check_char(first17.as_bytes()).ok_or_else(bad)?;
        Self::parse(&format!("{first17}{check}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registering office's division code (positions 3-8).
    pub fn division(&self) -> &str {
        &self.0[2..8]
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CreditCode({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_codes_validate() {
        assert_eq!(CreditCode::compose("11630000", "01560001").unwrap().as_str(), "11630000015600017P");
        assert!(CreditCode::compose("11632522", "7X000001").is_ok());
        assert!(CreditCode::compose("1163", "01560001").is_err());
        assert!(CreditCode::compose("11630000", "0156000!").is_err());
    }

    #[test]
    fn standard_vectors() {
        for (code, ok) in [
            ("91350100M000100Y43", true),
            ("91110000600037341L", true),
            ("11630000015600017P", true),
            ("N2630121MA7G000129", true),
            ("91350100M000100Y44", false),
            ("9135010OM000100Y43", false),
            ("91350100M000100Y56", false),
        ] {
            assert_eq!(CreditCode::parse(code).is_ok(), ok, "{code}: {:?}", CreditCode::parse(code));
        }
    }

    #[test]
    fn each_failure_is_named() {
        assert!(matches!(CreditCode::parse("91350100M000100Y44"), Err(CreditCodeError::Check(_, '3'))));
        assert!(matches!(CreditCode::parse("9135010OM000100Y43"), Err(CreditCodeError::Character(_, 'O'))));
        assert!(matches!(CreditCode::parse("91350100M000100Y56"), Err(CreditCodeError::OrgCheck(..))));
        assert!(matches!(CreditCode::parse("9135"), Err(CreditCodeError::Length(_))));
        let mut c = b"B1350100M000100Y4".to_vec();
        c.push(check_char(&c).unwrap() as u8);
        assert!(matches!(CreditCode::parse(std::str::from_utf8(&c).unwrap()), Err(CreditCodeError::Authority(..))));
        let mut c = b"97350100M000100Y4".to_vec();
        c.push(check_char(&c).unwrap() as u8);
        assert!(matches!(CreditCode::parse(std::str::from_utf8(&c).unwrap()), Err(CreditCodeError::Category(..))));
        assert_eq!(CreditCode::parse(" 11630000015600017p ").unwrap().division(), "630000");
    }
}
