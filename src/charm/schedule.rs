//! Cron schedules: standard 5-field expressions (minute hour day-of-month month day-of-week) checked and
//! expanded here, their next fire times computed with the `cron` crate. Used by the charm's config
//! validation and by the scheduler, so both agree on what an expression means.
//!
//! Semantics are Vixie cron's (what the Python charm's `/etc/cron.d` files meant): `*`, lists, ranges,
//! steps, month and weekday names, 0 and 7 both Sunday, and when both day fields are restricted (neither
//! starts with `*`) a day matches if *either* does. The `cron` crate ANDs the day fields, so that case is
//! two crate schedules whose next times are merged.

use std::str::FromStr;

use chrono::{DateTime, TimeZone};

/// Why an expression is not a 5-field cron expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0} fields, 5 needed")]
    FieldCount(usize),
    #[error("bad {field} field {value:?}")]
    BadField { field: &'static str, value: String },
    #[error("{0}")]
    Crate(String),
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
/// The `cron` crate's weekday names (it numbers days differently from cron(8), so names avoid doubt).
const CRATE_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// One field's name, range, and the names it accepts (with the number of the first name).
struct FieldSpec {
    name: &'static str,
    lo: u32,
    hi: u32,
    names: &'static [&'static str],
    name_base: u32,
}

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        lo: 0,
        hi: 59,
        names: &[],
        name_base: 0,
    },
    FieldSpec {
        name: "hour",
        lo: 0,
        hi: 23,
        names: &[],
        name_base: 0,
    },
    FieldSpec {
        name: "day of month",
        lo: 1,
        hi: 31,
        names: &[],
        name_base: 0,
    },
    FieldSpec {
        name: "month",
        lo: 1,
        hi: 12,
        names: &MONTHS,
        name_base: 1,
    },
    FieldSpec {
        name: "day of week",
        lo: 0,
        hi: 7,
        names: &DAYS,
        name_base: 0,
    },
];

/// The values one field selects, sorted and deduplicated.
fn expand(field: &str, spec: &FieldSpec) -> Result<Vec<u32>, ScheduleError> {
    let bad = || ScheduleError::BadField {
        field: spec.name,
        value: field.to_string(),
    };
    let value = |v: &str| -> Option<u32> {
        if let Some(i) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Some(i as u32 + spec.name_base);
        }
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = v.parse().ok()?;
        (spec.lo..=spec.hi).contains(&n).then_some(n)
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => {
                let st: u32 = st.parse().map_err(|_| bad())?;
                if st == 0 || st > spec.hi {
                    return Err(bad());
                }
                (r, st)
            }
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (spec.lo, spec.hi)
        } else if let Some((a, b)) = range.split_once('-') {
            match (value(a), value(b)) {
                (Some(a), Some(b)) if a <= b => (a, b),
                _ => return Err(bad()),
            }
        } else {
            let a = value(range).ok_or_else(bad)?;
            // `5/10` means from 5 to the end, every 10 (as Vixie cron reads it).
            (a, if item.contains('/') { spec.hi } else { a })
        };
        out.extend((a..=b).step_by(step as usize));
    }
    if spec.name == "day of week" {
        // 7 is another name for Sunday.
        for v in &mut out {
            if *v == 7 {
                *v = 0;
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A checked cron expression and the crate schedules that implement it.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    schedules: Vec<cron::Schedule>,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

fn list(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn crate_schedule(expr: &str) -> Result<cron::Schedule, ScheduleError> {
    cron::Schedule::from_str(expr).map_err(|e| ScheduleError::Crate(e.to_string()))
}

impl Schedule {
    /// Parses a standard 5-field expression (whitespace is normalised in [`Schedule::expression`]).
    pub fn parse(s: &str) -> Result<Schedule, ScheduleError> {
        let fields: Vec<&str> = s.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount(fields.len()));
        }
        let mut sets = Vec::with_capacity(5);
        for (f, spec) in fields.iter().zip(FIELDS.iter()) {
            sets.push(expand(f, spec)?);
        }
        let days: Vec<&str> = sets[4].iter().map(|d| CRATE_DAYS[*d as usize]).collect();
        let (min, hour, dom, mon) = (
            list(&sets[0]),
            list(&sets[1]),
            list(&sets[2]),
            list(&sets[3]),
        );
        let dow = days.join(",");
        let dom_restricted = !fields[2].starts_with('*');
        let dow_restricted = !fields[4].starts_with('*');
        let schedules = if dom_restricted && dow_restricted {
            vec![
                crate_schedule(&format!("0 {min} {hour} {dom} {mon} *"))?,
                crate_schedule(&format!("0 {min} {hour} * {mon} {dow}"))?,
            ]
        } else {
            vec![crate_schedule(&format!(
                "0 {min} {hour} {dom} {mon} {dow}"
            ))?]
        };
        Ok(Schedule {
            expression: fields.join(" "),
            schedules,
        })
    }

    /// Test only: a 6-field expression with seconds first, handed to the `cron` crate as is, so tests can
    /// run a scheduler with a schedule of seconds (the scheduler accepts it only with the cargo feature
    /// `test-hooks` and `DUPLICITY_CHARM_TEST_SECOND_SCHEDULES=1`).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn parse_with_seconds(s: &str) -> Result<Schedule, ScheduleError> {
        let fields: Vec<&str> = s.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(ScheduleError::FieldCount(fields.len()));
        }
        let expression = fields.join(" ");
        Ok(Schedule {
            schedules: vec![crate_schedule(&expression)?],
            expression,
        })
    }

    /// The expression, whitespace normalised.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first fire time strictly after `t` (None only for expressions that never fire, e.g. Feb 30).
    pub fn next_after<Z: TimeZone>(&self, t: &DateTime<Z>) -> Option<DateTime<Z>> {
        self.schedules
            .iter()
            .filter_map(|s| s.after(t).next())
            .min()
    }

    /// The last fire time at or before `t` (None when the expression never fired before it): what a
    /// scheduler that was not running at `t` has missed, at most.
    pub fn last_at_or_before<Z: TimeZone>(&self, t: &DateTime<Z>) -> Option<DateTime<Z>> {
        use chrono::Timelike;
        // The crate steps back from strictly before its start: start at the next whole second.
        let whole = t.clone().with_nanosecond(0)?;
        let from = whole + chrono::Duration::seconds(1);
        self.schedules
            .iter()
            .filter_map(|s| s.after(&from).next_back())
            .max()
    }

    /// The gap between the first two fire times after `t`, in seconds: the schedule's period there
    /// (what "overdue" is measured against).
    pub fn period_after<Z: TimeZone>(&self, t: &DateTime<Z>) -> Option<i64> {
        let first = self.next_after(t)?;
        let second = self.next_after(&first)?;
        Some((second - first).num_seconds())
    }
}

/// The fixed schedules the charm's keywords stand for. `backup_frequency` keywords mean what cron's
/// `@hourly`... meant in the Python charm's cron file; `deletion_frequency`'s hourly and daily run a little
/// before the hour or day (minute 40, 23:00), as the Python charm chose.
pub mod keywords {
    pub const HOURLY: &str = "0 * * * *";
    pub const DAILY: &str = "0 0 * * *";
    pub const WEEKLY: &str = "0 0 * * 0";
    pub const MONTHLY: &str = "0 0 1 * *";
    pub const DELETION_HOURLY: &str = "40 * * * *";
    pub const DELETION_DAILY: &str = "0 23 * * *";
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, from: &str) -> String {
        Schedule::parse(expr)
            .unwrap()
            .next_after(&at(from))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn next_fire_time_of_every_frequency_form() {
        // Wednesday 2024-05-15 10:20:30 UTC.
        let t = "2024-05-15T10:20:30+00:00";
        assert_eq!(next(keywords::HOURLY, t), "2024-05-15T11:00:00+00:00");
        assert_eq!(next(keywords::DAILY, t), "2024-05-16T00:00:00+00:00");
        assert_eq!(next(keywords::WEEKLY, t), "2024-05-19T00:00:00+00:00");
        assert_eq!(next(keywords::MONTHLY, t), "2024-06-01T00:00:00+00:00");
        assert_eq!(
            next(keywords::DELETION_HOURLY, t),
            "2024-05-15T10:40:00+00:00"
        );
        assert_eq!(
            next(keywords::DELETION_DAILY, t),
            "2024-05-15T23:00:00+00:00"
        );
        assert_eq!(next("*/15 * * * *", t), "2024-05-15T10:30:00+00:00");
        assert_eq!(next("30 2 * * *", t), "2024-05-16T02:30:00+00:00");
        assert_eq!(next("5/10 * * * *", t), "2024-05-15T10:25:00+00:00");
        assert_eq!(next("0 9-17/4 * * mon-fri", t), "2024-05-15T13:00:00+00:00");
        // 7 and 0 are both Sunday; names in any case.
        assert_eq!(next("0 0 * * 7", t), "2024-05-19T00:00:00+00:00");
        assert_eq!(next("0 0 * * SUN", t), "2024-05-19T00:00:00+00:00");
        assert_eq!(next("0 0 1 jan *", t), "2025-01-01T00:00:00+00:00");
        // Both day fields restricted: either matches (the 20th, or a Friday, whichever is first).
        assert_eq!(next("0 0 20 * 5", t), "2024-05-17T00:00:00+00:00");
        assert_eq!(next("0 0 16 * 1", t), "2024-05-16T00:00:00+00:00");
        // A day field starting with * leaves only the other one.
        assert_eq!(next("0 0 */1 * 5", t), "2024-05-17T00:00:00+00:00");
        // Leap day.
        assert_eq!(next("0 0 29 2 *", t), "2028-02-29T00:00:00+00:00");
        // Strictly after: a fire time equal to `t` is not returned.
        assert_eq!(
            next(keywords::HOURLY, "2024-05-15T11:00:00+00:00"),
            "2024-05-15T12:00:00+00:00"
        );
    }

    #[test]
    fn last_fire_time_at_or_before() {
        let last = |expr: &str, t: &str| {
            Schedule::parse(expr)
                .unwrap()
                .last_at_or_before(&at(t))
                .unwrap()
                .to_rfc3339()
        };
        let t = "2024-05-15T10:20:30+00:00";
        assert_eq!(last(keywords::DAILY, t), "2024-05-15T00:00:00+00:00");
        assert_eq!(last(keywords::HOURLY, t), "2024-05-15T10:00:00+00:00");
        assert_eq!(last(keywords::WEEKLY, t), "2024-05-12T00:00:00+00:00");
        assert_eq!(
            last(keywords::DELETION_DAILY, t),
            "2024-05-14T23:00:00+00:00"
        );
        // A fire time equal to `t` has passed.
        assert_eq!(
            last(keywords::DAILY, "2024-05-15T00:00:00+00:00"),
            "2024-05-15T00:00:00+00:00"
        );
        // Either day field, as next_after.
        assert_eq!(last("0 0 20 * 5", t), "2024-05-10T00:00:00+00:00");
        // Sub-second parts of `t` never make a later fire time count.
        let s = Schedule::parse_with_seconds("* * * * * *").unwrap();
        let t = at("2024-05-15T10:20:30.700+00:00");
        assert_eq!(
            s.last_at_or_before(&t).unwrap().to_rfc3339(),
            "2024-05-15T10:20:30+00:00"
        );
    }

    #[test]
    fn periods() {
        let t = at("2024-05-15T10:20:30+00:00");
        let p = |e: &str| Schedule::parse(e).unwrap().period_after(&t).unwrap();
        assert_eq!(p(keywords::HOURLY), 3600);
        assert_eq!(p(keywords::DAILY), 86400);
        assert_eq!(p(keywords::WEEKLY), 7 * 86400);
        assert_eq!(p(keywords::MONTHLY), 30 * 86400);
        assert_eq!(p("*/15 * * * *"), 900);
        let s = Schedule::parse_with_seconds("*/2 * * * * *").unwrap();
        assert_eq!(s.period_after(&t), Some(2));
        assert!(Schedule::parse_with_seconds("* * * * *").is_err());
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "* * * * * *",
            "1/5 x * * *",
            "+1 * * * *",
            "1,,2 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Schedule::parse("* 24 * * *").unwrap_err().to_string(),
            "bad hour field \"24\""
        );
        assert_eq!(
            Schedule::parse("*  2-4 * jan-mar mon,FRI")
                .unwrap()
                .expression(),
            "* 2-4 * jan-mar mon,FRI"
        );
    }
}
