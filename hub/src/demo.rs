//! `gdx-hub demo`: a small Qinghai on this machine.
//!
//! Creates a province hub in a fresh directory under the system temp dir,
//! starts it as a child process, enrols eighteen departments' agents at
//! province, prefecture and county level with real tokens and the real
//! `gdx-agent` binary (found next to `gdx-hub`), gives each generated data
//! that obeys the standards and a catalogue entry for each resource (the
//! five base resources and a dozen department ones), starts them, waits
//! until every resource is synced and catalogued, prints where to look, and
//! runs until Ctrl-C, when it stops its children and removes its files
//! (unless `--dir` named where to keep them). Every capability added later
//! extends it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_common::creditcode::CreditCode;
use gdx_common::generate::{Enterprise, Generator, Person};
use gdx_common::{DivisionCode, NodeId, Role};

use crate::catalog::{self, Catalog, Filter};
use crate::config::HubPaths;
use crate::store::Store;
use crate::util::now;
use crate::{enrol, init, nodes};

/// The departments the demo enrols, at province, prefecture and county
/// level, each with the resources it publishes and their catalogue entries.
const DEPARTMENTS: &[Department] = &[
    Department {
        node: "630000/gongan",
        name: "青海省公安厅",
        org: "01560001",
        resources: &[Resource {
            code: "hukou",
            entry: "101001/000001",
            name: "人口基本信息",
            class: "基础信息资源",
            classification: &["人口", "户籍人口"],
            summary: "全省户籍人口的公民身份号码、姓名、性别、民族、出生日期和户籍地",
            sharing: ("无条件共享", None, None),
            method: "接口",
            cycle: "每日",
            open: false,
            related: &[],
            rows: 300,
            columns: &[
                col("id_number", "公民身份号码", "C", 18, Gen::IdNumber),
                col("name", "姓名", "C", 50, Gen::PersonName),
                col("gender", "性别", "C", 2, Gen::Gender),
                col("minzu", "民族", "C", 20, Gen::Minzu),
                col("birth", "出生日期", "D", 8, Gen::Birth),
                col("county", "户籍地", "C", 50, Gen::County),
            ],
        }],
    },
    Department {
        node: "630000/scjg",
        name: "青海省市场监督管理局",
        org: "01560002",
        resources: &[Resource {
            code: "faren",
            entry: "102001/000001",
            name: "法人单位基本信息",
            class: "基础信息资源",
            classification: &["法人单位", "企业法人"],
            summary: "全省登记企业的统一社会信用代码、名称、法定代表人、登记地、成立日期和注册资本",
            sharing: ("无条件共享", None, None),
            method: "接口",
            cycle: "每日",
            open: true,
            related: &[],
            rows: 200,
            columns: &[
                col("credit_code", "统一社会信用代码", "C", 18, Gen::CreditCode),
                col("org_name", "单位名称", "C", 100, Gen::Company),
                col("legal_rep", "法定代表人", "C", 50, Gen::PersonName),
                col("county", "登记机关所在地", "C", 50, Gen::County),
                col("founded", "成立日期", "D", 8, Gen::Date),
                col("capital", "注册资本（万元）", "Y", 16, Gen::Money(10, 5000)),
            ],
        }],
    },
    Department {
        node: "630100/zrgh",
        name: "西宁市自然资源和规划局",
        org: "01560003",
        resources: &[Resource {
            code: "zongdi",
            entry: "103001/000001",
            name: "不动产宗地信息",
            class: "基础信息资源",
            classification: &["自然资源和空间地理", "不动产"],
            summary: "西宁市不动产登记的宗地代码、坐落、面积、土地用途和权利类型",
            sharing: ("无条件共享", None, None),
            method: "数据库",
            cycle: "每月",
            open: false,
            related: &[],
            rows: 150,
            columns: &[
                col("parcel_code", "宗地代码", "C", 19, Gen::Serial("630100ZD")),
                col("location", "坐落", "C", 100, Gen::County),
                col("area", "面积（平方米）", "F", 12, Gen::Money(80, 20000)),
                col(
                    "land_use",
                    "土地用途",
                    "C",
                    20,
                    Gen::Pick(&["住宅用地", "商服用地", "工业用地", "草地", "公共管理与公共服务用地"]),
                ),
                col(
                    "right_type",
                    "权利类型",
                    "C",
                    30,
                    Gen::Pick(&["国有建设用地使用权", "集体土地所有权", "宅基地使用权"]),
                ),
            ],
        }],
    },
    Department {
        node: "630000/fgw",
        name: "青海省发展和改革委员会",
        org: "01560004",
        resources: &[Resource {
            code: "shuanggongshi",
            entry: "104001/000001",
            name: "行政许可和行政处罚信用信息",
            class: "基础信息资源",
            classification: &["社会信用", "双公示"],
            summary: "法人和其他组织的行政许可、行政处罚决定（双公示），供信用监管和联合奖惩使用",
            sharing: ("无条件共享", None, None),
            method: "接口",
            cycle: "每日",
            open: true,
            related: &["102001/000001"],
            rows: 200,
            columns: &[
                col("decision_no", "决定文书号", "C", 50, Gen::Serial("青市监决字")),
                col("credit_code", "统一社会信用代码", "C", 18, Gen::CreditCode),
                col("subject", "主体名称", "C", 100, Gen::Company),
                col("kind", "决定类型", "C", 10, Gen::Pick(&["行政许可", "行政处罚"])),
                col("decided", "决定日期", "D", 8, Gen::Date),
            ],
        }],
    },
    Department {
        node: "630000/zwfw",
        name: "青海省政务服务监督管理局",
        org: "01560005",
        resources: &[Resource {
            code: "zhengzhao",
            entry: "105001/000001",
            name: "电子证照目录信息",
            class: "基础信息资源",
            classification: &["电子证照", "证照目录"],
            summary: "全省签发的电子证照：证照标识、类型、持证主体、颁证日期和有效期",
            sharing: ("无条件共享", None, None),
            method: "接口",
            cycle: "实时",
            open: false,
            related: &["101001/000001"],
            rows: 200,
            columns: &[
                col("license_id", "证照标识", "C", 40, Gen::Serial("1.2.156.3005.2.11630000")),
                col(
                    "license_type",
                    "证照类型",
                    "C",
                    50,
                    Gen::Pick(&["居民户口簿", "营业执照", "结婚证", "不动产权证书", "出生医学证明"]),
                ),
                col("holder", "持证主体", "C", 100, Gen::PersonName),
                col("holder_id", "持证主体代码", "C", 18, Gen::IdNumber),
                col("issued", "颁证日期", "D", 8, Gen::Date),
            ],
        }],
    },
    Department {
        node: "630000/minzheng",
        name: "青海省民政厅",
        org: "01560006",
        resources: &[
            Resource {
                code: "dibao",
                entry: "301001/000001",
                name: "城乡最低生活保障对象信息",
                class: "部门信息资源",
                classification: &["社会保障", "社会救助", "最低生活保障"],
                summary: "城乡低保对象的证件号码、姓名、保障人数、月保障金额和所在县，每月由各县报送",
                sharing: ("有条件共享", Some("仅限社会救助、医疗救助审核比对使用"), None),
                method: "接口",
                cycle: "每月",
                open: false,
                related: &["101001/000001"],
                rows: 120,
                // a GBK CSV drop, written by `dibao_csv`
                columns: &[
                    col("证件号码", "证件号码", "C", 18, Gen::IdNumber),
                    col("姓名", "姓名", "C", 50, Gen::PersonName),
                    col("保障人数", "保障人数", "I", 2, Gen::Int(1, 6)),
                    col("月保障金额", "月保障金额", "Y", 10, Gen::Money(600, 1200)),
                    col("所在县", "所在县", "C", 50, Gen::County),
                ],
            },
            Resource {
                code: "hunyin",
                entry: "301001/000002",
                name: "婚姻登记信息",
                class: "部门信息资源",
                classification: &["民政", "婚姻登记"],
                summary: "结婚和离婚登记：登记证字号、双方证件号码、登记类型和日期",
                sharing: ("有条件共享", Some("仅限婚姻状况核验，须经当事人授权"), None),
                method: "接口",
                cycle: "每日",
                open: false,
                related: &["101001/000001"],
                rows: 100,
                columns: &[
                    col("cert_no", "登记证字号", "C", 30, Gen::Serial("J630000-2026-")),
                    col("husband_id", "男方证件号码", "C", 18, Gen::IdNumber),
                    col("wife_id", "女方证件号码", "C", 18, Gen::IdNumber),
                    col("kind", "登记类型", "C", 10, Gen::Pick(&["结婚登记", "离婚登记"])),
                    col("registered", "登记日期", "D", 8, Gen::Date),
                ],
            },
        ],
    },
    Department {
        node: "630100/weijian",
        name: "西宁市卫生健康委员会",
        org: "01560101",
        resources: &[
            Resource {
                code: "chusheng",
                entry: "202001/000001",
                name: "出生医学证明信息",
                class: "主题信息资源",
                classification: &["健康保障", "出生医学证明"],
                summary: "新生儿出生医学证明：编号、姓名、性别、出生日期、母亲证件号码和签发机构",
                sharing: ("有条件共享", Some("仅限户籍登记和社会保障业务使用"), None),
                method: "接口",
                cycle: "每日",
                open: false,
                related: &["101001/000001"],
                rows: 150,
                columns: &[
                    col("cert_no", "出生医学证明编号", "C", 10, Gen::Serial("Q63")),
                    col("baby", "新生儿姓名", "C", 50, Gen::PersonName),
                    col("gender", "性别", "C", 2, Gen::Gender),
                    col("born", "出生日期", "D", 8, Gen::Date),
                    col("mother_id", "母亲证件号码", "C", 18, Gen::IdNumber),
                    col(
                        "hospital",
                        "签发机构",
                        "C",
                        100,
                        Gen::Pick(&["青海大学附属医院", "青海省妇女儿童医院", "西宁市第一人民医院"]),
                    ),
                ],
            },
            Resource {
                code: "yiliao",
                entry: "302001/000001",
                name: "医疗机构执业登记信息",
                class: "部门信息资源",
                classification: &["卫生健康", "医疗机构"],
                summary: "医疗机构的登记号、名称、统一社会信用代码、类别和床位数",
                sharing: ("无条件共享", None, None),
                method: "数据库",
                cycle: "每月",
                open: true,
                related: &["102001/000001"],
                rows: 80,
                columns: &[
                    col("reg_no", "登记号", "C", 22, Gen::Serial("PDY630100")),
                    col("org_name", "机构名称", "C", 100, Gen::Company),
                    col("credit_code", "统一社会信用代码", "C", 18, Gen::CreditCode),
                    col(
                        "kind",
                        "机构类别",
                        "C",
                        20,
                        Gen::Pick(&["综合医院", "中医医院", "社区卫生服务中心", "乡镇卫生院", "诊所"]),
                    ),
                    col("beds", "床位数", "I", 4, Gen::Int(0, 800)),
                ],
            },
        ],
    },
    Department {
        node: "630100/zhujian",
        name: "西宁市住房和城乡建设局",
        org: "01560102",
        resources: &[Resource {
            code: "gongjijin",
            entry: "303001/000001",
            name: "住房公积金缴存信息",
            class: "部门信息资源",
            classification: &["住房保障", "住房公积金"],
            summary: "缴存职工的个人账号、证件号码、姓名、月缴存额、缴存状态和单位",
            sharing: ("有条件共享", Some("经缴存职工授权后用于贷款和住房保障审核"), None),
            method: "接口",
            cycle: "每月",
            open: false,
            related: &["101001/000001"],
            rows: 150,
            columns: &[
                col("account", "个人账号", "C", 20, Gen::Serial("6301000")),
                col("id_number", "证件号码", "C", 18, Gen::IdNumber),
                col("name", "姓名", "C", 50, Gen::PersonName),
                col("monthly", "月缴存额", "Y", 10, Gen::Money(300, 3000)),
                col("status", "缴存状态", "C", 10, Gen::Pick(&["正常", "封存", "销户"])),
                col("employer", "单位名称", "C", 100, Gen::Company),
            ],
        }],
    },
    Department {
        node: "632500/renshe",
        name: "海南藏族自治州人力资源和社会保障局",
        org: "01560201",
        resources: &[
            Resource {
                code: "shebao",
                entry: "204001/000001",
                name: "社会保险参保信息",
                class: "主题信息资源",
                classification: &["社会保障", "社会保险"],
                summary: "参保人员的证件号码、姓名、险种、参保状态和参保日期",
                sharing: ("有条件共享", Some("仅限社保待遇资格认证和社会救助审核使用"), None),
                method: "接口",
                cycle: "每月",
                open: false,
                related: &["101001/000001"],
                rows: 200,
                columns: &[
                    col("id_number", "证件号码", "C", 18, Gen::IdNumber),
                    col("name", "姓名", "C", 50, Gen::PersonName),
                    col(
                        "insurance",
                        "险种",
                        "C",
                        30,
                        Gen::Pick(&["城镇职工基本养老保险", "城乡居民基本养老保险", "失业保险", "工伤保险"]),
                    ),
                    col("status", "参保状态", "C", 10, Gen::Pick(&["参保缴费", "暂停缴费", "终止参保"])),
                    col("since", "参保日期", "D", 8, Gen::Date),
                ],
            },
            Resource {
                code: "jiuye",
                entry: "304001/000001",
                name: "就业登记信息",
                class: "部门信息资源",
                classification: &["就业", "就业登记"],
                summary: "就业登记的编号、证件号码、姓名、就业单位、就业形式和登记日期",
                sharing: ("无条件共享", None, None),
                method: "文件",
                cycle: "每月",
                open: false,
                related: &[],
                rows: 120,
                columns: &[
                    col("reg_no", "登记编号", "C", 20, Gen::Serial("JY632500")),
                    col("id_number", "证件号码", "C", 18, Gen::IdNumber),
                    col("name", "姓名", "C", 50, Gen::PersonName),
                    col("employer", "就业单位", "C", 100, Gen::Company),
                    col("form", "就业形式", "C", 10, Gen::Pick(&["单位就业", "灵活就业", "自主创业"])),
                ],
            },
        ],
    },
    Department {
        node: "632522/minzheng",
        name: "同德县民政局",
        org: "01560301",
        resources: &[Resource {
            code: "tekun",
            entry: "301002/000001",
            name: "特困人员供养信息",
            class: "部门信息资源",
            classification: &["社会保障", "社会救助", "特困人员"],
            summary: "特困人员的证件号码、姓名、供养方式、月供养金额和所在乡镇",
            sharing: ("有条件共享", Some("仅限社会救助审核比对使用"), None),
            method: "接口",
            cycle: "每月",
            open: false,
            related: &["301001/000001"],
            rows: 60,
            columns: &[
                col("id_number", "证件号码", "C", 18, Gen::IdNumber),
                col("name", "姓名", "C", 50, Gen::PersonName),
                col("care", "供养方式", "C", 10, Gen::Pick(&["集中供养", "分散供养"])),
                col("monthly", "月供养金额", "Y", 10, Gen::Money(800, 1500)),
                col(
                    "township",
                    "所在乡镇",
                    "C",
                    20,
                    Gen::Pick(&["尕巴松多镇", "唐谷镇", "巴沟乡", "秀麻乡", "河北乡"]),
                ),
            ],
        }],
    },
    Department {
        node: "632521/jiaoyu",
        name: "共和县教育局",
        org: "01560302",
        resources: &[Resource {
            code: "xueji",
            entry: "305001/000001",
            name: "中小学学籍信息",
            class: "部门信息资源",
            classification: &["教育", "学籍"],
            summary: "中小学生的学籍号、证件号码、姓名、学校、年级和入学日期",
            sharing: ("有条件共享", Some("仅限教育资助和入学资格审核使用"), None),
            method: "接口",
            cycle: "每季度",
            open: false,
            related: &["101001/000001"],
            rows: 150,
            columns: &[
                col("student_no", "学籍号", "C", 19, Gen::Serial("G632521")),
                col("id_number", "证件号码", "C", 18, Gen::IdNumber),
                col("name", "姓名", "C", 50, Gen::PersonName),
                col(
                    "school",
                    "学校",
                    "C",
                    50,
                    Gen::Pick(&["共和县第一完全小学", "共和县第二中学", "恰卜恰镇寄宿制小学"]),
                ),
                col("grade", "年级", "C", 10, Gen::Pick(&["一年级", "三年级", "五年级", "初一", "初三"])),
                col("enrolled", "入学日期", "D", 8, Gen::Date),
            ],
        }],
    },
    Department {
        node: "632523/nongmu",
        name: "贵德县农牧水利和科技局",
        org: "01560303",
        resources: &[Resource {
            code: "caoyuan",
            entry: "206001/000001",
            name: "草原生态保护补助奖励发放信息",
            class: "主题信息资源",
            classification: &["生态环保", "草原生态保护"],
            summary: "草原生态保护补助奖励的发放编号、户主证件号码和姓名、草原面积、补助金额",
            sharing: ("无条件共享", None, None),
            method: "文件",
            cycle: "每年",
            open: true,
            related: &[],
            rows: 100,
            columns: &[
                col("payment_no", "发放编号", "C", 20, Gen::Serial("CY632523")),
                col("id_number", "户主证件号码", "C", 18, Gen::IdNumber),
                col("name", "户主姓名", "C", 50, Gen::PersonName),
                col("area_mu", "草原面积（亩）", "F", 10, Gen::Money(100, 5000)),
                col("amount", "补助金额", "Y", 10, Gen::Money(500, 20000)),
            ],
        }],
    },
    Department {
        node: "630121/scjg",
        name: "大通回族土族自治县市场监督管理局",
        org: "01560304",
        resources: &[Resource {
            code: "shipin",
            entry: "207001/000001",
            name: "食品经营许可信息",
            class: "主题信息资源",
            classification: &["食品药品安全", "食品经营许可"],
            summary: "食品经营许可证编号、经营者名称、统一社会信用代码、经营项目和有效期",
            sharing: ("无条件共享", None, None),
            method: "接口",
            cycle: "每周",
            open: true,
            related: &["102001/000001"],
            rows: 100,
            columns: &[
                col("licence_no", "许可证编号", "C", 20, Gen::Serial("JY1630121")),
                col("operator", "经营者名称", "C", 100, Gen::Company),
                col("credit_code", "统一社会信用代码", "C", 18, Gen::CreditCode),
                col("scope", "经营项目", "C", 30, Gen::Pick(&["预包装食品销售", "散装食品销售", "热食类食品制售"])),
                col("valid_until", "有效期至", "D", 8, Gen::Date),
            ],
        }],
    },
    Department {
        node: "632524/weijian",
        name: "兴海县卫生健康局",
        org: "01560305",
        resources: &[Resource {
            code: "jiezhong",
            entry: "302002/000001",
            name: "预防接种个案信息",
            class: "部门信息资源",
            classification: &["卫生健康", "预防接种"],
            summary: "受种者的接种编号、证件号码、姓名、疫苗名称、接种日期和接种单位",
            sharing: (
                "不予共享",
                Some("涉及个人健康隐私，仅在本系统内使用"),
                Some("《中华人民共和国疫苗管理法》第三十二条"),
            ),
            method: "数据库",
            cycle: "每日",
            open: false,
            related: &[],
            rows: 120,
            columns: &[
                col("dose_no", "接种编号", "C", 20, Gen::Serial("YM632524")),
                col("id_number", "受种者证件号码", "C", 18, Gen::IdNumber),
                col("name", "受种者姓名", "C", 50, Gen::PersonName),
                col("vaccine", "疫苗名称", "C", 30, Gen::Pick(&["乙肝疫苗", "麻腮风疫苗", "百白破疫苗", "脊灰疫苗"])),
                col("given", "接种日期", "D", 8, Gen::Date),
            ],
        }],
    },
    Department {
        node: "630102/minzheng",
        name: "西宁市城东区民政局",
        org: "01560106",
        resources: &[Resource {
            code: "linshi",
            entry: "301003/000001",
            name: "临时救助对象信息",
            class: "部门信息资源",
            classification: &["社会保障", "社会救助", "临时救助"],
            summary: "临时救助的救助编号、申请人证件号码和姓名、救助金额、救助日期和所在街道",
            sharing: ("有条件共享", Some("仅限社会救助审核比对使用"), None),
            method: "接口",
            cycle: "每月",
            open: false,
            related: &["301001/000001"],
            rows: 80,
            columns: &[
                col("case_no", "救助编号", "C", 20, Gen::Serial("LS630102")),
                col("id_number", "申请人证件号码", "C", 18, Gen::IdNumber),
                col("name", "申请人姓名", "C", 50, Gen::PersonName),
                col("amount", "救助金额", "Y", 10, Gen::Money(300, 5000)),
                col("granted", "救助日期", "D", 8, Gen::Date),
                col(
                    "street",
                    "所在街道",
                    "C",
                    20,
                    Gen::Pick(&["东关大街街道", "清真巷街道", "大众街街道", "周家泉街道", "火车站街道", "八一路街道"]),
                ),
            ],
        }],
    },
    Department {
        node: "632522/gongan",
        name: "同德县公安局",
        org: "01560306",
        resources: &[Resource {
            code: "huji",
            entry: "308001/000001",
            name: "同德县户籍登记信息",
            class: "部门信息资源",
            classification: &["公共安全", "户籍管理"],
            summary: "同德县户籍人口的公民身份号码、姓名、性别、民族、出生日期和户籍地，按日汇入全省人口基础信息",
            sharing: ("有条件共享", Some("仅限政务服务身份核验使用"), None),
            method: "接口",
            cycle: "每日",
            open: false,
            related: &["101001/000001"],
            rows: 120,
            columns: &[
                col("id_number", "公民身份号码", "C", 18, Gen::IdNumber),
                col("name", "姓名", "C", 50, Gen::PersonName),
                col("gender", "性别", "C", 2, Gen::Gender),
                col("minzu", "民族", "C", 20, Gen::Minzu),
                col("birth", "出生日期", "D", 8, Gen::Birth),
                col("county", "户籍地", "C", 50, Gen::County),
            ],
        }],
    },
    Department {
        node: "632523/scjg",
        name: "贵德县市场监督管理局",
        org: "01560307",
        resources: &[Resource {
            code: "geti",
            entry: "309001/000001",
            name: "个体工商户登记信息",
            class: "部门信息资源",
            classification: &["市场监管", "个体工商户"],
            summary: "个体工商户的统一社会信用代码、字号名称、经营者、经营场所所在县和登记日期",
            sharing: ("无条件共享", None, None),
            method: "接口",
            cycle: "每周",
            open: true,
            related: &["102001/000001"],
            rows: 90,
            columns: &[
                col("credit_code", "统一社会信用代码", "C", 18, Gen::CreditCode),
                col("trade_name", "字号名称", "C", 100, Gen::Company),
                col("operator", "经营者姓名", "C", 50, Gen::PersonName),
                col("county", "经营场所所在县", "C", 50, Gen::County),
                col("registered", "登记日期", "D", 8, Gen::Date),
            ],
        }],
    },
    Department {
        node: "632521/weijian",
        name: "共和县卫生健康局",
        org: "01560308",
        resources: &[Resource {
            code: "jiating",
            entry: "310001/000001",
            name: "家庭医生签约服务信息",
            class: "主题信息资源",
            classification: &["健康保障", "家庭医生签约"],
            summary: "家庭医生签约的签约编号、居民证件号码和姓名、签约团队和签约日期",
            sharing: ("有条件共享", Some("仅限医疗保障和健康管理业务使用"), None),
            method: "接口",
            cycle: "每月",
            open: false,
            related: &[],
            rows: 100,
            columns: &[
                col("contract_no", "签约编号", "C", 20, Gen::Serial("QY632521")),
                col("id_number", "居民证件号码", "C", 18, Gen::IdNumber),
                col("name", "居民姓名", "C", 50, Gen::PersonName),
                col(
                    "team",
                    "签约团队",
                    "C",
                    30,
                    Gen::Pick(&["恰卜恰镇卫生院团队", "倒淌河镇卫生院团队", "龙羊峡镇卫生院团队"]),
                ),
                col("signed", "签约日期", "D", 8, Gen::Date),
            ],
        }],
    },
];

/// The prefecture hubs the demo runs under the province: 西宁市 and 海南藏族自治州.
const PREFECTURES: &[&str] = &["630100", "632500"];

/// A department the demo enrols.
struct Department {
    node: &'static str,
    name: &'static str,
    /// The first 8 characters of its organisation code.
    org: &'static str,
    resources: &'static [Resource],
}

/// A resource with its catalogue entry; the first column is the key.
struct Resource {
    code: &'static str,
    entry: &'static str,
    name: &'static str,
    class: &'static str,
    classification: &'static [&'static str],
    summary: &'static str,
    /// 共享类型, 共享条件, 法律依据.
    sharing: (&'static str, Option<&'static str>, Option<&'static str>),
    method: &'static str,
    cycle: &'static str,
    open: bool,
    related: &'static [&'static str],
    rows: usize,
    columns: &'static [Col],
}

/// A column: source name, 信息项名称, 数据类型, 数据长度, how to make values.
struct Col(&'static str, &'static str, &'static str, u32, Gen);

const fn col(column: &'static str, item: &'static str, ty: &'static str, len: u32, gen_: Gen) -> Col {
    Col(column, item, ty, len, gen_)
}

/// How a column's sample values are made.
enum Gen {
    IdNumber,
    PersonName,
    Gender,
    Minzu,
    Birth,
    County,
    CreditCode,
    Company,
    Date,
    Money(u32, u32),
    Int(u32, u32),
    Pick(&'static [&'static str]),
    Serial(&'static str),
}

fn resource_count() -> usize {
    DEPARTMENTS.iter().map(|d| d.resources.len()).sum()
}

/// Runs the demo until `shutdown` completes.
/// `seed` chooses the generated people and enterprises: the same seed gives
/// the same data.
pub async fn run(
    keep: Option<std::path::PathBuf>,
    seed: u64,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let hub_exe = std::env::current_exe().context("cannot find the gdx-hub executable")?;
    let agent_exe = hub_exe.with_file_name("gdx-agent");
    if !agent_exe.exists() {
        anyhow::bail!(
            "gdx-agent was not found next to gdx-hub ({}); install both binaries in the same directory",
            agent_exe.display()
        );
    }
    let root = match &keep {
        Some(dir) => {
            if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
                anyhow::bail!("{} is not empty; give --dir a new or empty directory", dir.display());
            }
            dir.clone()
        }
        None => std::env::temp_dir().join(format!("gdx-demo-{}", now())),
    };
    // removes the demo's files when it ends, however it ends, unless --dir keeps them
    let _cleanup = Cleanup { dir: keep.is_none().then(|| root.clone()) };
    let hub_dir = root.join("hub-630000");
    let quic = format!("127.0.0.1:{}", free_port()?);
    let http = format!("127.0.0.1:{}", free_port()?);
    let config = init::init_root(
        &hub_dir,
        &init::InitOptions {
            division: DivisionCode::parse("630000")?,
            name: "青海省政务数据共享交换平台".into(),
            listen: quic.clone(),
            advertise: None,
            http: http.clone(),
        },
    )?;
    println!("GDX demo in {}", root.display());
    println!("province hub {} ({}) on {quic}/udp", config.hub_id(), config.name);
    let mut children = Vec::new();
    children.push(spawn(&hub_exe, &hub_dir, &["run"])?);
    wait_for(Duration::from_secs(20), "the hub to listen", || {
        std::fs::read_to_string(hub_dir.join("run.log")).is_ok_and(|l| l.contains("listening on"))
    })
    .await?;

    let paths = HubPaths::new(&hub_dir);
    // Every hub of the tree pins the province's root in its tokens.
    let root_fingerprint = enrol::Authority::load(&paths)?.root_fingerprint();
    // The prefecture hubs join the province with real tokens.
    let mut hubs: Vec<(HubPaths, crate::HubConfig)> = vec![(paths.clone(), config.clone())];
    for prefecture in PREFECTURES {
        let token = {
            let store = Store::open(&paths.db())?;
            enrol::make_token(
                &store,
                &config,
                root_fingerprint,
                &NodeId::parse(&format!("{prefecture}/hub"))?,
                Role::Hub,
                3600,
                now(),
            )?
        };
        let dir = root.join(format!("hub-{prefecture}"));
        let opts = init::JoinOptions {
            token: token.encode(),
            name: None,
            listen: format!("127.0.0.1:{}", free_port()?),
            advertise: None,
            http: format!("127.0.0.1:{}", free_port()?),
        };
        let child = init::init_join(&dir, &opts, Duration::from_secs(15)).await?;
        println!("prefecture hub {} ({}) joined the province, on {}/udp", child.hub_id(), child.name, child.listen);
        children.push(spawn(&hub_exe, &dir, &["run"])?);
        wait_for(Duration::from_secs(20), "the prefecture hub to listen", || {
            std::fs::read_to_string(dir.join("run.log")).is_ok_and(|l| l.contains("listening on"))
        })
        .await?;
        hubs.push((HubPaths::new(&dir), child));
    }
    for (n, dept) in DEPARTMENTS.iter().enumerate() {
        let node_id = NodeId::parse(dept.node)?;
        // a department attaches to the hub of its prefecture, if the demo runs one
        let (hub_paths, hub_config) =
            hubs.iter().rev().find(|(_, c)| c.division.contains(node_id.division())).unwrap_or(&hubs[0]);
        let token = {
            let store = Store::open(&hub_paths.db())?;
            enrol::make_token(&store, hub_config, root_fingerprint, &node_id, Role::Agent, 3600, now())?
        };
        let dir = root.join(format!("agent-{}", dept.node.replace('/', "-")));
        let status = tokio::process::Command::new(&agent_exe)
            .arg("--data")
            .arg(&dir)
            .args(["enroll", "--token", &token.encode()])
            .stdout(Stdio::null())
            .status()
            .await?;
        if !status.success() {
            anyhow::bail!("the demo could not enrol {}; see the error above", dept.node);
        }
        // each department draws from a stream of its own
        sample_data(&dir, dept, seed.wrapping_add(n as u64))?;
        let names: Vec<String> = dept.resources.iter().map(|r| format!("{} ({})", r.code, r.name)).collect();
        println!(
            "enrolled {} {} ({}) at {}: publishes {}",
            dept.node,
            dept.name,
            node_id.division().name(),
            hub_config.hub_id(),
            names.join(", ")
        );
        children.push(spawn(&agent_exe, &dir, &["run"])?);
    }

    let store = Store::open(&paths.db())?;
    // The province sees the agents below the prefecture hubs through their reports.
    let connected = || {
        nodes::list(&store, None, now())
            .map(|l| l.iter().filter(|n| n.row.role == "agent" && n.state == "connected").count())
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(90), "the agents to connect", || connected() == DEPARTMENTS.len()).await?;
    println!("\n{} of {} agents connected (the province sees the whole tree):\n", connected(), DEPARTMENTS.len());
    // every resource is in the vault of the hub its department attaches to
    let synced = || {
        hubs.iter()
            .map(|(p, _)| {
                Store::open(&p.db())
                    .and_then(|s| nodes::list(&s, Some(&p.dir.join("vaults")), now()))
                    .map(|l| l.iter().filter(|n| n.via.is_none()).map(|n| n.resources.len()).sum::<usize>())
                    .unwrap_or(0)
            })
            .sum::<usize>()
    };
    wait_for(Duration::from_secs(90), "the first sync of every resource", || synced() >= resource_count()).await?;
    let vaults = paths.dir.join("vaults");
    let catalog = Catalog::open(&hub_dir)?;
    let entries = || catalog.list(&Filter::default(), now()).map(|l| l.len()).unwrap_or(0);
    wait_for(Duration::from_secs(60), "every catalogue entry at the province", || entries() == resource_count())
        .await?;
    // and the prefecture hubs have forwarded the base resources' data
    let forwarded = || {
        let base = Filter { class: Some(gdx_common::catalog::CatalogClass::Base), ..Filter::default() };
        catalog.list(&base, now()).is_ok_and(|l| {
            l.iter().all(|e| {
                crate::vault::summaries(&vaults, &e.entry.provider)
                    .iter()
                    .any(|s| s.resource == e.entry.resource.as_str())
            })
        })
    };
    wait_for(Duration::from_secs(60), "the prefecture hubs to forward the base data", forwarded).await?;
    print!("{}", nodes::table(&nodes::list(&store, Some(&vaults), now())?));
    println!(
        "\nThe province's catalogue (five base resources, the rest from departments at three levels; the prefecture hubs forwarded theirs, with the base resources' data):\n"
    );
    print!("{}", catalog::table(&catalog.list(&Filter::default(), now())?));
    exchange_demo(&agent_exe, &root).await?;
    let hub = hub_dir.display();
    let pref = root.join("hub-632500");
    let pref = pref.display();
    let gongan = root.join("agent-630000-gongan");
    let minzheng = root.join("agent-630000-minzheng");
    let in_four_days = gdx_common::units::format_date(now() + 4 * 86_400);
    let consumer = root.join("agent-632522-minzheng");
    let consumer = consumer.display();
    println!(
        "\nWhere to look (in another terminal):\n\
         \x20 gdx-hub --data {hub} nodes                     the whole tree: hubs, agents, state, backlog\n\
         \x20 gdx-hub --data {pref} catalog list            the province's catalogue, flowed down to 海南州\n\
         \x20 sqlite3 {hub}/vaults/630100-zrgh.db 'SELECT count(*) FROM zongdi'   base data forwarded by 西宁 (department data stays there)\n\
         \x20 gdx-hub --data {hub} catalog search 人口       search the catalogue in Chinese\n\
         \x20 gdx-hub --data {hub} catalog list --sharing conditional --division 632500   conditional entries of 海南州\n\
         \x20 gdx-hub --data {hub} catalog show 301001/000001   one entry in full\n\
         \x20 gdx-hub --data {hub} catalog list --overdue --as-of {in_four_days}   what is overdue in four days\n\
         \x20 curl --cacert {hub}/ca.crt -G https://{http}/api/v1/catalog --data-urlencode q=低保\n\
         \x20 gdx-agent --data {} status          one agent's view, with its catalogue entry\n\
         \x20 gdx-agent --data {} status          the 民政 agent's quarantine (two bad CSV lines)\n\
         \x20 gdx-hub --data {hub} grants                    requests and grants of the whole province\n\
         \x20 gdx-hub --data {pref} audit list --kind request   the audit log: who asked for what (also decision, delivered, lookup…)\n\
         \x20 gdx-hub --data {pref} audit verify            re-hash the log, check its checkpoints and the province's cosignatures\n\
         \x20 gdx-agent --data {consumer} requests   the 同德 民政 department's requests\n\
         \x20 gdx-agent --data {consumer} lookup --resource 101001/000001 ID_NUMBER   one record under a grant\n\
         \x20 sqlite3 {consumer}/received.db .tables   what 同德 民政 received\n\
         \x20 gdx-hub --data {hub} revoke 630000/gongan   watch that agent get cut off\n\
         \x20 sqlite3 {hub}/vaults/630000-gongan.db 'SELECT * FROM hukou LIMIT 5'\n\
         \x20 edit {}/source/data.db or drop a CSV into {}/drop: the change reaches the vault\n\
         \x20 logs: {}/*/run.log\n\n\
         Press Ctrl-C to stop the demo; {}.",
        gongan.display(),
        minzheng.display(),
        gongan.display(),
        minzheng.display(),
        root.display(),
        match keep {
            Some(_) => format!("its files stay in {}", root.display()),
            None => format!("it then removes {} (run it with --dir DIR to keep its files)", root.display()),
        }
    );
    shutdown.await;
    println!("stopping the demo");
    for mut child in children {
        stop(&mut child).await;
    }
    Ok(())
}

/// Controlled exchange across prefectures: 同德县民政局 (below 海南州) asks
/// 西宁市卫健委 for birth certificates (有条件共享), which approves fewer
/// fields, and the province's population base (无条件共享, granted at once);
/// the rows arrive in its received database, the mothers' ID numbers masked.
async fn exchange_demo(agent_exe: &Path, root: &Path) -> anyhow::Result<()> {
    use gdx_common::grant::RequestRecord;
    let consumer = root.join("agent-632522-minzheng");
    let provider = root.join("agent-630100-weijian");
    println!("\nControlled exchange: 同德县民政局 (海南州) asks 西宁市卫生健康委员会 for birth certificates:\n");
    let out = agent(
        agent_exe,
        &consumer,
        &[
            "request",
            "--resource",
            "202001/000001",
            "--fields",
            "出生医学证明编号,新生儿姓名,出生日期,母亲证件号码",
            "--purpose",
            "新生儿家庭社会救助资格比对",
            "--json",
        ],
    )
    .await?;
    let filed: RequestRecord = serde_json::from_str(&out).context("the request's answer is not a request record")?;
    println!(
        "  gdx-agent request --resource 202001/000001 --fields 出生医学证明编号,新生儿姓名,出生日期,母亲证件号码 --purpose …\n  → request {} is {} (有条件共享: 西宁 must answer by {})",
        filed.id,
        filed.state(now()),
        match filed.status {
            gdx_common::grant::Status::Pending { answer_by_day } =>
                gdx_common::units::format_date(answer_by_day * 86_400),
            _ => "-".into(),
        }
    );
    let xining = root.join("hub-630100");
    let at_xining = || {
        crate::exchange::Exchange::open(&xining, NodeId::parse("630100/hub").expect("a valid id"))
            .and_then(|x| x.record(&filed.id))
            .is_ok_and(|r| r.is_some())
    };
    wait_for(Duration::from_secs(60), "the request to reach 西宁 through the province", at_xining).await?;
    let approved =
        agent(agent_exe, &provider, &["approve", &filed.id, "--fields", "出生医学证明编号,出生日期,母亲证件号码"])
            .await?;
    println!(
        "  西宁市卫健委: gdx-agent approve {} --fields 出生医学证明编号,出生日期,母亲证件号码\n  → {}",
        filed.id,
        approved.trim()
    );
    let free = agent(
        agent_exe,
        &consumer,
        &["request", "--resource", "101001/000001", "--fields", "姓名,民族", "--purpose", "特困人员身份核验"],
    )
    .await?;
    println!(
        "  gdx-agent request --resource 101001/000001 --fields 姓名,民族 --purpose 特困人员身份核验\n  → {}",
        free.trim().replace('\n', "\n    ")
    );
    let received = consumer.join("received.db");
    let count = |table: &str| -> i64 {
        rusqlite::Connection::open_with_flags(&received, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0)))
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(60), "the granted rows to arrive at 同德县民政局", || {
        count("weijian_chusheng_630100") > 0 && count("gongan_hukou_630000") > 0
    })
    .await?;
    let c = rusqlite::Connection::open_with_flags(&received, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt =
        c.prepare("SELECT cert_no, born, mother_id FROM weijian_chusheng_630100 ORDER BY cert_no LIMIT 3")?;
    let sample: Vec<(String, String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    println!(
        "\n  delivered to 同德县民政局 ({} birth certificates, {} residents), e.g. weijian_chusheng_630100:",
        count("weijian_chusheng_630100"),
        count("gongan_hukou_630000")
    );
    for (no, born, mother) in sample {
        println!("    {no}  {born}  {mother}");
    }
    println!(
        "  (新生儿姓名 was not approved and never left 西宁; 母亲证件号码 is sensitive and arrives masked; the residents' ID numbers were not asked for, so their rows arrive keyed by a pseudonym)\n"
    );
    let province = crate::exchange::Exchange::open(&root.join("hub-630000"), NodeId::parse("630000/hub")?)?;
    // the consumer's hub reports how far delivery got; give it a few seconds to reach the province
    let reported = || province.list(now()).is_ok_and(|l| l.iter().all(|g| g.rows_delivered > 0));
    let _ = wait_for(Duration::from_secs(15), "delivery progress at the province", reported).await;
    print!("{}", crate::exchange::table(&province.list(now())?));
    Ok(())
}

/// Runs `gdx-agent --data DIR ARGS…` and returns its output, or its error.
async fn agent(exe: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(exe).arg("--data").arg(dir).args(args).output().await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        anyhow::bail!(
            "the demo's `gdx-agent {}` failed: {}{}",
            args.first().unwrap_or(&""),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

/// Writes a department's sample sources (SQLite tables, and for 低保 a GBK
/// CSV drop with two bad lines) and catalogue entries, and declares them in
/// agent.toml.
fn sample_data(dir: &Path, dept: &Department, seed: u64) -> anyhow::Result<()> {
    let node = NodeId::parse(dept.node)?;
    let provider_code = CreditCode::compose(&format!("11{}", node.division()), dept.org)?;
    // people of the department's own area
    let mut gen_ = Generator::within(seed, node.division());
    std::fs::create_dir_all(dir.join("catalog"))?;
    let mut declared = String::new();
    for res in dept.resources {
        let firms = res.columns.iter().any(|c| matches!(c.4, Gen::CreditCode | Gen::Company));
        let rows: Vec<Vec<String>> = (0..res.rows)
            .map(|i| {
                let person = gen_.person();
                let firm = firms.then(|| gen_.enterprise());
                res.columns.iter().map(|c| value(&c.4, i, &person, firm.as_ref(), &mut gen_)).collect()
            })
            .collect();
        let key = res.columns[0].0;
        let source = if res.code == "dibao" {
            let drop = dir.join("drop");
            std::fs::create_dir_all(&drop)?;
            std::fs::write(drop.join("dibao-2026-11.csv"), dibao_csv(res, &rows))?;
            format!("{{ kind = \"csv\", dir = {} }}", toml_str(&drop.display().to_string()))
        } else {
            let src = dir.join("source");
            std::fs::create_dir_all(&src)?;
            let db = src.join("data.db");
            write_table(&db, res, &rows)?;
            format!("{{ kind = \"sqlite\", path = {}, table = \"{}\" }}", toml_str(&db.display().to_string()), res.code)
        };
        let entry = catalog_entry(&node, dept, provider_code.as_str(), res)?;
        let file = format!("catalog/{}.toml", res.code);
        std::fs::write(dir.join(&file), toml::to_string(&entry)?)?;
        declared.push_str(&format!(
            "\n[[resource]]\ncode = \"{}\"\nkey = [{}]\nschedule = \"1m\"\nsource = {source}\ncatalog = \"{file}\"\n",
            res.code,
            toml_str(key)
        ));
    }
    let mut config = std::fs::OpenOptions::new().append(true).open(dir.join("agent.toml"))?;
    std::io::Write::write_all(&mut config, declared.as_bytes())?;
    Ok(())
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn catalog_entry(
    node: &NodeId,
    dept: &Department,
    provider_code: &str,
    res: &Resource,
) -> anyhow::Result<gdx_common::catalog::CatalogEntry> {
    use gdx_common::catalog::{CatalogEntry, FormatCategory, InfoItem};
    let items = res
        .columns
        .iter()
        .map(|c| {
            Ok(InfoItem {
                name: c.1.to_owned(),
                column: (c.0 != c.1).then(|| c.0.to_owned()),
                data_type: c.2.parse().map_err(anyhow::Error::msg)?,
                length: c.3,
                sensitive: matches!(c.4, Gen::IdNumber),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let csv = res.code == "dibao";
    Ok(CatalogEntry {
        code: res.entry.to_owned(),
        resource: gdx_common::data::ResourceCode::parse(res.code)?,
        class: res.class.parse().map_err(anyhow::Error::msg)?,
        classification: res.classification.iter().map(|c| (*c).to_owned()).collect(),
        name: res.name.to_owned(),
        provider: node.clone(),
        provider_name: dept.name.to_owned(),
        provider_code: provider_code.to_owned(),
        summary: res.summary.to_owned(),
        format: if csv { FormatCategory::Spreadsheet } else { FormatCategory::Database },
        format_type: if csv { "csv" } else { "sqlite" }.to_owned(),
        items,
        sharing_type: res.sharing.0.parse().map_err(anyhow::Error::msg)?,
        sharing_condition: res.sharing.1.map(str::to_owned),
        sharing_method: res.method.parse().map_err(anyhow::Error::msg)?,
        legal_basis: res.sharing.2.map(str::to_owned),
        open_to_public: res.open,
        open_condition: None,
        update_cycle: res.cycle.parse().map_err(anyhow::Error::msg)?,
        published: "2026-11-01".to_owned(),
        related: res.related.iter().map(|c| (*c).to_owned()).collect(),
    })
}

/// One column's value in a row about `p` (and, for rows about a market
/// entity, `firm`).
fn value(g: &Gen, i: usize, p: &Person, firm: Option<&Enterprise>, gen_: &mut Generator) -> String {
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
    }
}

/// Creates `res`'s table in `db` (typed by the 数据类型 of its items) with `rows`.
fn write_table(db: &Path, res: &Resource, rows: &[Vec<String>]) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    let cols: Vec<String> = res
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = match c.2 {
                "I" => "INTEGER",
                "Y" | "F" | "N" | "B" => "REAL",
                _ => "TEXT",
            };
            format!("\"{}\" {ty}{}", c.0, if i == 0 { " PRIMARY KEY" } else { "" })
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
fn dibao_csv(res: &Resource, rows: &[Vec<String>]) -> Vec<u8> {
    let header: Vec<&str> = res.columns.iter().map(|c| c.0).collect();
    let mut csv = header.join(",") + "\r\n";
    for r in rows {
        csv.push_str(&format!("{},{},{},\"{}\",{}\r\n", r[0], r[1], r[2], r[3], r[4]));
    }
    csv.push_str(",无证件号码,1,\"600.00\",同德县\r\n");
    csv.push_str("632522199001010000,\"引号\"错误,1,600,同德县\r\n");
    encoding_rs::GBK.encode(&csv).0.into_owned()
}

fn spawn(exe: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::File::create(dir.join("run.log"))?;
    Ok(tokio::process::Command::new(exe)
        .arg("--data")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

/// Removes a directory when dropped.
struct Cleanup {
    dir: Option<std::path::PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            anyhow::bail!("the demo gave up waiting for {what} after {} s; see the run.log files", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}
