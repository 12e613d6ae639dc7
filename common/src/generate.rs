//! Sample data that follows the national standards, the same for a given
//! seed on every machine: the demo, the end-to-end tests and gdx-bench all
//! draw their people and enterprises from here.
//!
//! - People: 公民身份号码 with the address code of a real Qinghai county (a
//!   retired code when the person was born before the county was renamed),
//!   a real birth date no later than [`REFERENCE_DAY`], a sequence digit whose
//!   parity matches the sex, and the check character; names of Han, Tibetan,
//!   Hui, Tu, Salar and Mongol people in the province's proportions
//!   ([`ETHNICITIES`]), each living where that people mostly lives; an address
//!   in a real county; a mobile number.
//! - Enterprises: valid 统一社会信用代码 (企业, 个体工商户 or 农民专业合作社,
//!   registered in a real county), a name, a legal representative.
//!
//! A [`Generator`] never hands out the same ID number or credit code twice.
//! Pure code: the reference date is a constant, not the clock.

use std::collections::HashSet;

use crate::creditcode::CreditCode;
use crate::division::{DivisionCode, DivisionLevel, divisions};
use crate::idnumber;
use crate::units::{civil_from_days, days_from_civil};

/// The day no generated date passes (2026-11-01), so the same seed gives
/// the same data whatever the clock says.
pub const REFERENCE_DAY: i64 = 20_758;

/// The peoples the generator names, with their share of Qinghai's population
/// in per mille (2020 census, rounded; the other peoples, about 0.5 %, are
/// left out) and the counties where most of them live.
pub const ETHNICITIES: &[(&str, u32, &[&str])] = &[
    (
        "汉族",
        504,
        &[
            "630102", "630103", "630104", "630105", "630106", "630121", "630123", "630202", "630203", "630222",
            "630223", "632221", "632521", "632523", "632801", "632802",
        ],
    ),
    (
        "藏族",
        248,
        &[
            "632222", "632223", "632224", "632301", "632322", "632323", "632521", "632522", "632523", "632524",
            "632525", "632621", "632622", "632623", "632624", "632625", "632626", "632701", "632722", "632723",
            "632724", "632725", "632726", "632822", "632823",
        ],
    ),
    ("回族", 149, &["630102", "630105", "630106", "630121", "630203", "630222", "630224", "632221"]),
    ("土族", 36, &["630223", "630222", "630121", "632301"]),
    ("撒拉族", 19, &["630225", "630224", "630102"]),
    ("蒙古族", 17, &["632324", "632802", "632821", "632822", "632801", "632223"]),
];

/// Counties renamed since people were born there: (current code, the code
/// numbers assigned before `year` carry).
const RETIRED: &[(&str, &str, i64)] =
    &[("630106", "630122", 2019), ("630203", "630221", 2015), ("632301", "632321", 2020), ("632803", "632859", 2018)];

const HAN_SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "孙", "朱", "马", "胡", "郭", "何", "高", "罗", "周", "吴", "徐", "魏",
    "祁", "谢", "韩", "许", "宋", "郑", "冯", "董", "曹",
];
const HAN_MALE: &[&str] = &[
    "伟", "强", "军", "磊", "勇", "杰", "涛", "斌", "鹏", "海", "建国", "志强", "永福", "德明", "成林", "文博", "浩然",
    "宇轩", "国庆", "生福", "占林", "子豪",
];
const HAN_FEMALE: &[&str] = &[
    "芳", "娜", "静", "丽", "敏", "燕", "霞", "秀兰", "桂英", "玉梅", "晓红", "海燕", "婷", "欣怡", "雨涵", "梓涵",
    "春花", "玉兰",
];
const HUI_SURNAMES: &[&str] = &["马", "马", "马", "韩", "冶", "沙", "喇", "白", "苏", "杨", "李"];
const HUI_MALE: &[&str] = &["海军", "占山", "福祥", "国良", "成福", "学文", "忠孝", "永祥", "志明", "德福", "有才"];
const HUI_FEMALE: &[&str] = &["秀兰", "梅", "玉兰", "海燕", "桂花", "秀英", "晓燕", "兰芳", "麦燕", "法图麦"];
const TIBETAN_FIRST: &[&str] = &[
    "才让", "扎西", "索南", "尼玛", "旦增", "更登", "公保", "仁青", "久美", "洛桑", "桑杰", "完玛", "华旦", "拉加",
    "贡布", "昂秀",
];
const TIBETAN_MALE: &[&str] = &["多杰", "东智", "加措", "才旦", "太", "本", "尖措", "扎西", "加"];
const TIBETAN_FEMALE: &[&str] = &["卓玛", "拉毛", "措", "吉", "草", "卓嘎", "央金", "德吉", "拉姆"];
const TU_SURNAMES: &[&str] = &["祁", "李", "吕", "星", "鲁", "董", "汪", "秦", "胡"];
const TU_MALE: &[&str] = &["永寿", "全成", "生财", "索南", "进宝", "有福", "成林"];
const TU_FEMALE: &[&str] = &["秀梅", "成英", "索吉", "桂兰", "玉花", "卓玛"];
const SALAR_SURNAMES: &[&str] = &["韩", "韩", "韩", "马", "沈", "冶"];
const SALAR_MALE: &[&str] = &["乙四夫", "阿舍", "忠义", "尔里", "伊斯哈", "哈三", "努海", "阿卜都"];
const SALAR_FEMALE: &[&str] = &["索菲", "阿依舍", "尕毛", "法图麦", "麦燕", "尕吉"];
const MONGOL_MALE: &[&str] = &["巴图", "额尔敦", "宝音", "苏和", "那仁", "特木尔", "朝鲁", "巴特尔", "布和"];
const MONGOL_FEMALE: &[&str] = &["其木格", "萨仁", "高娃", "图雅", "斯琴", "乌兰", "娜仁花", "格日勒"];

const ROADS: &[&str] = &[
    "团结路",
    "人民路",
    "解放路",
    "民主路",
    "建设路",
    "长江路",
    "黄河路",
    "昆仑路",
    "文化街",
    "新华街",
    "胜利路",
    "北大街",
];
const MOBILE_PREFIXES: &[&str] = &["135", "136", "138", "139", "150", "151", "152", "177", "180", "186", "187", "199"];
const TRADE_WORDS: &[&str] = &["高原", "昆仑", "三江源", "青湖", "河湟", "柴达木", "祁连", "雪域", "江河", "唐蕃"];
const INDUSTRIES: &[&str] = &["牧业", "商贸", "建设", "食品", "科技", "旅游", "药业", "能源", "物流", "农业"];
const SHOPS: &[&str] = &["藏式餐馆", "清真饭馆", "百货商店", "牛羊肉店", "汽车修理部", "民族服饰店", "茶社"];
/// Characters an organisation code (GB 11714) is drawn from; letters the
/// credit code alphabet lacks (I, O, S, V, Z) are left out.
const ORG_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A small, fast pseudo-random generator (SplitMix64): deterministic by seed,
/// not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A generated person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// 公民身份号码, 18 characters, valid.
    pub id_number: String,
    pub name: String,
    pub male: bool,
    /// 民族, e.g. 藏族.
    pub ethnicity: &'static str,
    /// 出生日期, `YYYY-MM-DD`.
    pub birth: String,
    /// The current code of the county the person lives in.
    pub county_code: String,
    /// Its name, e.g. 同德县.
    pub county: String,
    /// 住址: province, prefecture, county, road and number.
    pub address: String,
    /// An 11-digit mobile number.
    pub phone: String,
}

impl Person {
    /// 性别 as written in the population base: 男 or 女.
    pub fn sex(&self) -> &'static str {
        if self.male { "男" } else { "女" }
    }
}

/// A generated market entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enterprise {
    /// 统一社会信用代码, 18 characters, valid.
    pub credit_code: String,
    pub name: String,
    /// 企业, 个体工商户 or 农民专业合作社.
    pub kind: &'static str,
    /// 法定代表人 or 经营者.
    pub representative: String,
    pub county_code: String,
    pub county: String,
    pub address: String,
    /// 成立日期, `YYYY-MM-DD`.
    pub registered: String,
    /// 注册资本 in 万元 (0 for 个体工商户).
    pub capital: u64,
}

/// A county of the bundled division table, with the names an address needs.
#[derive(Debug, Clone)]
struct County {
    code: String,
    name: String,
    prefecture: String,
}

/// Makes people and enterprises, deterministically by seed.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    counties: Vec<County>,
    /// The counties of the area.
    area: Vec<usize>,
    /// Counties per entry of [`ETHNICITIES`], limited to the area.
    homes: Vec<Vec<usize>>,
    ids: HashSet<u64>,
    codes: HashSet<String>,
}

impl Generator {
    /// A generator for people and enterprises anywhere in Qinghai.
    pub fn new(seed: u64) -> Self {
        Self::within(seed, DivisionCode::QINGHAI)
    }

    /// A generator whose people live and whose enterprises are registered in
    /// `area` (the province, a prefecture or a county). Outside Qinghai it
    /// falls back to the whole province.
    pub fn within(seed: u64, area: DivisionCode) -> Self {
        let all = divisions();
        let name_of = |code: DivisionCode| all.iter().find(|d| d.code == code).map(|d| d.name.clone());
        let counties: Vec<County> = all
            .iter()
            .filter(|d| d.retired.is_none() && d.code.level() == DivisionLevel::County)
            .map(|d| County {
                code: d.code.to_string(),
                name: d.name.clone(),
                prefecture: name_of(d.code.prefecture()).unwrap_or_default(),
            })
            .collect();
        let inside = |c: &County| DivisionCode::parse(&c.code).is_ok_and(|code| area.contains(code));
        let area_counties: Vec<usize> = (0..counties.len()).filter(|&i| inside(&counties[i])).collect();
        let area = if area_counties.is_empty() { (0..counties.len()).collect() } else { area_counties };
        let homes = ETHNICITIES
            .iter()
            .map(|(_, _, list)| {
                let listed: Vec<usize> =
                    area.iter().copied().filter(|&i| list.contains(&counties[i].code.as_str())).collect();
                if listed.is_empty() { area.clone() } else { listed }
            })
            .collect();
        Self { rng: Rng::new(seed), counties, area, homes, ids: HashSet::new(), codes: HashSet::new() }
    }

    /// The generator's random numbers, for values the standards do not shape.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The next person, with an ID number this generator has not given before.
    pub fn person(&mut self) -> Person {
        let mut roll = self.rng.below(ETHNICITIES.iter().map(|e| u64::from(e.1)).sum());
        let mut people = 0;
        for (i, e) in ETHNICITIES.iter().enumerate() {
            if roll < u64::from(e.1) {
                people = i;
                break;
            }
            roll -= u64::from(e.1);
        }
        let ethnicity = ETHNICITIES[people].0;
        let county = self.counties[*self.rng.pick(&self.homes[people])].clone();
        let male = self.rng.chance(510);
        let name = self.name(ethnicity, male);
        loop {
            let born = self.birth_day();
            let (year, month, day) = civil_from_days(born);
            let assigned = RETIRED
                .iter()
                .find(|(now, _, until)| *now == county.code && year < *until)
                .map_or(county.code.as_str(), |(_, old, _)| old);
            let seq = self.rng.range(1, 500) * 2 + u64::from(male);
            let first17 = format!("{assigned}{year:04}{month:02}{day:02}{seq:03}");
            let Some(check) = idnumber::check_char(first17.as_bytes()) else { continue };
            let Ok(digits) = first17.parse::<u64>() else { continue };
            if !self.ids.insert(digits) {
                continue;
            }
            let address = self.address(&county);
            let phone = format!("{}{:08}", self.rng.pick(MOBILE_PREFIXES), self.rng.below(100_000_000));
            return Person {
                id_number: format!("{first17}{check}"),
                name,
                male,
                ethnicity,
                birth: format!("{year:04}-{month:02}-{day:02}"),
                county_code: county.code.clone(),
                county: county.name.clone(),
                address,
                phone,
            };
        }
    }

    /// The next enterprise, with a credit code this generator has not given before.
    pub fn enterprise(&mut self) -> Enterprise {
        let county = self.counties[*self.rng.pick(&self.area)].clone();
        let representative = self.person().name;
        let (kind, category, name, capital) = match self.rng.below(10) {
            0..=5 => {
                let name = format!(
                    "青海{}{}{}",
                    self.rng.pick(TRADE_WORDS),
                    self.rng.pick(INDUSTRIES),
                    if self.rng.chance(300) { "股份有限公司" } else { "有限公司" }
                );
                ("企业", '1', name, 10 * self.rng.range(5, 500))
            }
            6..=8 => {
                let name = format!("{}{}{}", county.name, representative, self.rng.pick(SHOPS));
                ("个体工商户", '2', name, 0)
            }
            _ => {
                let name =
                    format!("{}{}{}专业合作社", county.name, self.rng.pick(TRADE_WORDS), self.rng.pick(INDUSTRIES));
                ("农民专业合作社", '3', name, self.rng.range(10, 500))
            }
        };
        let registered = self.rng.range(days_from_civil(1995, 1, 1) as u64, REFERENCE_DAY as u64) as i64;
        let (year, month, day) = civil_from_days(registered);
        let address = self.address(&county);
        loop {
            // Codes assigned since 2015 begin with MA; older ones are digits.
            let mut org = String::from(if year >= 2015 { "MA" } else { "" });
            while org.len() < 8 {
                let chars = if year >= 2015 { ORG_CHARS } else { &ORG_CHARS[..10] };
                org.push(char::from(*self.rng.pick(chars)));
            }
            let Ok(code) = CreditCode::compose(&format!("9{category}{}", county.code), &org) else { continue };
            if !self.codes.insert(code.as_str().to_owned()) {
                continue;
            }
            return Enterprise {
                credit_code: code.as_str().to_owned(),
                name,
                kind,
                representative,
                county_code: county.code.clone(),
                county: county.name.clone(),
                address,
                registered: format!("{year:04}-{month:02}-{day:02}"),
                capital,
            };
        }
    }

    /// A date between `from` (`YYYY`) and the reference day, `YYYY-MM-DD`.
    pub fn date_since(&mut self, from: i64) -> String {
        let start = days_from_civil(from, 1, 1);
        let day = start + self.rng.below((REFERENCE_DAY - start).max(1) as u64) as i64;
        let (y, m, d) = civil_from_days(day);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// A birth day: 22 % children, 63 % aged 18-59, 15 % aged 60-95.
    fn birth_day(&mut self) -> i64 {
        let years = match self.rng.below(100) {
            0..=21 => self.rng.range(0, 18),
            22..=84 => self.rng.range(18, 60),
            _ => self.rng.range(60, 96),
        };
        let day_in_year = self.rng.below(365) as i64;
        (REFERENCE_DAY - years as i64 * 365 - (years as i64 / 4) - day_in_year).min(REFERENCE_DAY)
    }

    fn name(&mut self, ethnicity: &str, male: bool) -> String {
        let r = &mut self.rng;
        let given = |r: &mut Rng, m: &[&str], f: &[&str]| (*r.pick(if male { m } else { f })).to_owned();
        match ethnicity {
            "藏族" => {
                let own = given(r, TIBETAN_MALE, TIBETAN_FEMALE);
                if r.chance(250) { own } else { format!("{}{own}", r.pick(TIBETAN_FIRST)) }
            }
            "回族" => format!("{}{}", r.pick(HUI_SURNAMES), given(r, HUI_MALE, HUI_FEMALE)),
            "土族" if r.chance(300) => {
                format!("{}{}", r.pick(TIBETAN_FIRST), given(r, TIBETAN_MALE, TIBETAN_FEMALE))
            }
            "土族" => format!("{}{}", r.pick(TU_SURNAMES), given(r, TU_MALE, TU_FEMALE)),
            "撒拉族" => format!("{}{}", r.pick(SALAR_SURNAMES), given(r, SALAR_MALE, SALAR_FEMALE)),
            "蒙古族" => given(r, MONGOL_MALE, MONGOL_FEMALE),
            _ => format!("{}{}", r.pick(HAN_SURNAMES), given(r, HAN_MALE, HAN_FEMALE)),
        }
    }

    fn address(&mut self, county: &County) -> String {
        format!("青海省{}{}{}{}号", county.prefecture, county.name, self.rng.pick(ROADS), self.rng.range(1, 300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creditcode::CreditCode;
    use crate::idnumber::{IdNumber, IdWarning};

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let take = |seed| {
            let mut g = Generator::new(seed);
            (0..50).map(|_| (g.person(), g.enterprise())).collect::<Vec<_>>()
        };
        assert_eq!(take(7), take(7));
        assert_ne!(take(7), take(8));
    }

    #[test]
    fn people_follow_gb_11643() {
        let mut g = Generator::new(1);
        let mut retired = 0;
        for _ in 0..20_000 {
            let p = g.person();
            let (id, warnings) = IdNumber::parse(&p.id_number, REFERENCE_DAY)
                .unwrap_or_else(|e| panic!("{} is not valid: {e}", p.id_number));
            assert_eq!(id.is_male(), p.male, "{}: sequence digit and sex disagree", p.id_number);
            assert_eq!(p.id_number[6..14], p.birth.replace('-', ""), "birth date in {}", p.id_number);
            let county = DivisionCode::parse(&p.county_code).expect("county code");
            assert!(county.is_current() && county.level() == DivisionLevel::County, "{}", p.county_code);
            assert!(p.address.contains(&p.county) && p.address.starts_with("青海省"), "{}", p.address);
            assert_eq!(p.phone.len(), 11);
            if !warnings.is_empty() {
                assert!(matches!(&warnings[0], IdWarning::AddressCode(_)));
                retired += 1;
            }
            assert!(p.birth.as_str() <= "2026-11-01" && p.birth.as_str() >= "1930-01-01", "{}", p.birth);
        }
        assert!(retired > 0, "people born in renamed counties carry the retired code");
    }

    #[test]
    fn peoples_in_census_proportions() {
        let mut g = Generator::new(2);
        let n = 50_000u32;
        let mut counts = vec![0u32; ETHNICITIES.len()];
        for _ in 0..n {
            let p = g.person();
            let i = ETHNICITIES.iter().position(|e| e.0 == p.ethnicity).expect("listed");
            counts[i] += 1;
        }
        let total: u32 = ETHNICITIES.iter().map(|e| e.1).sum();
        for (i, (name, share, _)) in ETHNICITIES.iter().enumerate() {
            let expected = f64::from(n) * f64::from(*share) / f64::from(total);
            let got = f64::from(counts[i]);
            assert!((got - expected).abs() < expected * 0.1 + 30.0, "{name}: {got} people, expected about {expected}");
        }
    }

    #[test]
    fn no_id_number_or_credit_code_twice() {
        let mut g = Generator::within(3, DivisionCode::parse("632522").expect("同德县"));
        let mut ids = HashSet::new();
        let mut codes = HashSet::new();
        for _ in 0..30_000 {
            let p = g.person();
            assert_eq!(p.county_code, "632522", "everyone lives in 同德县");
            assert!(ids.insert(p.id_number));
        }
        for _ in 0..2_000 {
            assert!(codes.insert(g.enterprise().credit_code));
        }
    }

    #[test]
    fn enterprises_follow_gb_32100() {
        let mut g = Generator::within(4, DivisionCode::parse("630100").expect("西宁市"));
        for _ in 0..2_000 {
            let e = g.enterprise();
            let code = CreditCode::parse(&e.credit_code).unwrap_or_else(|err| panic!("{}: {err}", e.credit_code));
            assert_eq!(code.division(), e.county_code);
            assert!(e.county_code.starts_with("6301"), "registered in 西宁市: {}", e.county_code);
            let category = match e.kind {
                "企业" => "91",
                "个体工商户" => "92",
                _ => "93",
            };
            assert!(e.credit_code.starts_with(category), "{} is a {}", e.credit_code, e.kind);
            assert!(e.registered.as_str() <= "2026-11-01");
        }
    }
}
