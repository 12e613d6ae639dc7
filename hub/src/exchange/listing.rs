//! `gdx-hub grants`: every request and grant this hub knows, and its table.

use super::*;

impl Exchange {
    /// Every request and grant this hub knows, newest first, with delivery figures.
    pub fn list(&self, now: i64) -> Result<Vec<Listed>, ExchangeError> {
        let mut stmt = self.conn.prepare(
            "SELECT r.record, coalesce(p.n, 0), coalesce(p.rows, 0), coalesce(x.n, 0), x.error
             FROM requests r LEFT JOIN progress p ON p.grant_id = r.id LEFT JOIN producers x ON x.grant_id = r.id
             ORDER BY r.first_rev DESC",
        )?;
        let rows: Vec<(String, i64, i64, i64, Option<String>)> = stmt
            .query_map(args![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(j, n, rows, produced, error)| {
                let record = parse_record(&j)?.for_agent();
                Ok(Listed {
                    state: record.state(now).to_owned(),
                    record,
                    delivered: n as u64,
                    rows_delivered: rows as u64,
                    produced: produced as u64,
                    error,
                })
            })
            .collect()
    }
}

/// The `gdx-hub grants` table: one line per request, then its purpose and,
/// when it was refused, denied or revoked, why.
pub fn table(list: &[Listed]) -> String {
    use gdx_common::units::format_date;
    let head = ["ID", "STATE", "CONSUMER", "PROVIDER", "CODE", "FIELDS", "UNTIL", "ROWS"];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| (*h).to_owned()).collect()];
    for l in list {
        let r = &l.record;
        let fields = if r.columns.is_empty() { &r.fields } else { &r.columns };
        let fields: Vec<String> =
            fields.iter().map(|f| if r.masked.contains(f) { format!("{f}(masked)") } else { f.clone() }).collect();
        let until = match (&r.status, r.granted_until.or(r.until)) {
            (Status::Pending { answer_by_day }, _) => format!("due {}", format_date(answer_by_day * 86_400)),
            (_, Some(d)) => format_date(d * 86_400),
            (_, None) => "-".into(),
        };
        rows.push(vec![
            r.id.clone(),
            l.state.to_string(),
            r.consumer.to_string(),
            r.provider.to_string(),
            r.code.clone(),
            fields.join(","),
            until,
            l.rows_delivered.to_string(),
        ]);
        rows.push(vec![String::new(), format!("{} — {}", r.name, r.purpose)]);
        let why = match &r.status {
            Status::Refused { reason } | Status::Denied { reason } | Status::Revoked { reason, .. } => Some(reason),
            _ => None,
        };
        if let Some(why) = why.or(l.error.as_ref()) {
            rows.push(vec![String::new(), why.to_string()]);
        }
    }
    gdx_common::table::render(&rows)
}
