//! duplicity's time strings: now, epoch seconds, w3 datetimes, intervals and dates.
//!
//! The accepted forms and their order of precedence follow duplicity 0.8.22 (`genstrtotime`), including
//! its quirks, so that `-t X` selects the same backup in both tools:
//! - a w3 datetime without a zone, and the date forms, use the local *standard* offset (DST ignored),
//!   taken as the smaller of the offsets on 1 January and 1 July of the current year;
//! - an explicit negative offset with minutes (`-03:30`) is read as duplicity reads it, i.e. the
//!   minutes are added rather than subtracted (`-03:30` counts as 2.5 hours behind UTC);
//! - day numbers are checked against 1..=31 only and roll over like `calendar.timegm` (Feb 31 = Mar 2/3).

use chrono::{Datelike, Local, NaiveDate, Offset, TimeZone, Utc};

/// Why a time string or interval was refused. The message is the one line an operator sees.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeError {
    #[error(
        "bad time string {0:?}: use \"now\", epoch seconds (1700000000), 20240102T030405Z, \
         2024-01-02T03:04:05 (local) or with Z/+01:00, an interval ago like 3D4h \
         (units s m h D W M Y, case-sensitive), or a date 2024-01-02, 2024/01/02, 01/02/2024, \
         01-02-2024, 20240102Z (local midnight)"
    )]
    BadTime(String),
    #[error(
        "bad interval {0:?}: use runs of <number><unit> like 2Y, 3D4h or 1h30m; \
         units s m h D W M(30 days) Y(365 days), case-sensitive"
    )]
    BadInterval(String),
}

/// Parses any of duplicity's time strings to epoch seconds; `now` is the current time (or
/// `--current-time`), the base of intervals.
pub fn parse_time(s: &str, now: i64) -> Result<i64, TimeError> {
    parse_time_with_offset(s, now, local_standard_offset(now))
}

/// `parse_time` with the local standard offset (seconds east of UTC) given, so tests need no TZ.
fn parse_time_with_offset(s: &str, now: i64, std_offset: i64) -> Result<i64, TimeError> {
    if s == "now" {
        return Ok(now);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| TimeError::BadTime(s.to_string()));
    }
    // duplicity tries the string as given, then with the local standard zone appended (which also
    // makes a 15-character `YYYYMMDDTHHMMSS` valid when that zone is UTC, as in duplicity).
    let local_zone = tzd_string(std_offset);
    if let Some(t) = string_to_time(s).or_else(|| string_to_time(&format!("{s}{local_zone}"))) {
        return Ok(t);
    }
    if let Ok(secs) = parse_interval(s) {
        return now
            .checked_sub(secs)
            .ok_or_else(|| TimeError::BadTime(s.to_string()));
    }
    let (y, m, d) = parse_date(s).ok_or_else(|| TimeError::BadTime(s.to_string()))?;
    string_to_time(&format!("{y}-{m:02}-{d:02}T00:00:00{local_zone}"))
        .ok_or_else(|| TimeError::BadTime(s.to_string()))
}

/// Parses an interval such as `2W`, `3D4h` or `1h78m` to seconds. Units are case-sensitive:
/// s, m(inute), h, D, W, M(onth = 30 days), Y(ear = 365 days).
pub fn parse_interval(s: &str) -> Result<i64, TimeError> {
    let bad = || TimeError::BadInterval(s.to_string());
    if s.len() < 2 {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = s.as_bytes();
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits == rest.len() {
            return Err(bad());
        }
        let num: i64 = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        let unit: i64 = match rest[digits] {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'D' => 86400,
            b'W' => 7 * 86400,
            b'M' => 30 * 86400,
            b'Y' => 365 * 86400,
            _ => return Err(bad()),
        };
        total = num
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    Ok(total)
}

/// Formats epoch seconds as duplicity's UTC file-name time, `YYYYMMDDTHHMMSSZ`.
pub fn format_timestamp(t: i64) -> String {
    match Utc.timestamp_opt(t, 0).single() {
        Some(dt) => dt.format("%Y%m%dT%H%M%SZ").to_string(),
        // Out of chrono's range: cannot come from a real backup; keep it visible rather than panic.
        None => format!("{t}"),
    }
}

/// Parses duplicity's 16-character UTC time `YYYYMMDDTHHMMSSZ` (as in file names).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if s.len() != 16 {
        return None;
    }
    string_to_time(s)
}

/// Parses a w3 datetime with an explicit zone (`2002-04-26T04:22:01-07:00`, `…Z`), as found in
/// duplicity's old-style file names, or the 16-character UTC form.
pub fn parse_w3(s: &str) -> Option<i64> {
    string_to_time(s)
}

/// Python's `time.asctime(time.localtime(t))`: `Tue Jan  2 03:04:05 2024` (day padded with a space).
pub fn asctime_local(t: i64) -> String {
    match Local.timestamp_opt(t, 0).earliest() {
        Some(dt) => dt.format("%a %b %e %H:%M:%S %Y").to_string(),
        None => format!("{t}"),
    }
}

/// `asctime` in UTC, for tests and for callers that must not depend on TZ.
pub fn asctime_utc(t: i64) -> String {
    match Utc.timestamp_opt(t, 0).single() {
        Some(dt) => dt.format("%a %b %e %H:%M:%S %Y").to_string(),
        None => format!("{t}"),
    }
}

/// Local standard offset east of UTC in seconds, computed as CPython computes `time.timezone`:
/// of 1 January and 1 July of the current year, the offset that is further west.
fn local_standard_offset(now: i64) -> i64 {
    let year = Utc
        .timestamp_opt(now, 0)
        .single()
        .map(|d| d.year())
        .unwrap_or(1970);
    let offset_at = |month: u32| -> i64 {
        NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|ndt| i64::from(Local.offset_from_utc_datetime(&ndt).fix().local_minus_utc()))
            .unwrap_or(0)
    };
    offset_at(1).min(offset_at(7))
}

/// duplicity's zone suffix for an offset: `Z` for UTC, else `±HH:MM` (whole minutes).
fn tzd_string(offset_east: i64) -> String {
    let minutes = offset_east.div_euclid(60);
    if minutes == 0 {
        return "Z".to_string();
    }
    let sign = if minutes > 0 { '+' } else { '-' };
    // As Python's divmod then abs: -210 min gives "-04:30", which tzd_to_seconds reads back as 3.5 h.
    let (h, m) = (minutes.div_euclid(60).abs(), minutes.rem_euclid(60));
    format!("{sign}{h:02}:{m:02}")
}

/// Seconds to add to a local time to get UTC, from a zone suffix, the way duplicity computes it.
fn tzd_to_seconds(tzd: &str) -> Option<i64> {
    if tzd == "Z" {
        return Some(0);
    }
    let b = tzd.as_bytes();
    if b.len() != 6 || !(b[0] == b'+' || b[0] == b'-') || b[3] != b':' {
        return None;
    }
    let hours = digits(&tzd[1..3])?;
    let hours = if b[0] == b'-' { -hours } else { hours };
    let minutes = digits(&tzd[4..6])?;
    // duplicity: -60 * (60 * int("-07") + int("30")): the minutes keep their sign (quirk kept).
    Some(-60 * (60 * hours + minutes))
}

/// A non-empty run of ASCII digits as a number.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// duplicity's `stringtotime`: the 16-character UTC form, or `YYYY-MM-DDTHH:MM:SS` + zone.
fn string_to_time(s: &str) -> Option<i64> {
    if !s.is_ascii() {
        return None;
    }
    let (fields, zone) = if s.len() == 16 {
        let (date, time) = s.split_once('T')?;
        if date.len() != 8 || time.len() != 7 || time.contains('T') {
            return None;
        }
        (
            [
                digits(&date[0..4])?,
                digits(&date[4..6])?,
                digits(&date[6..8])?,
                digits(&time[0..2])?,
                digits(&time[2..4])?,
                digits(&time[4..6])?,
            ],
            0,
        )
    } else {
        if s.len() < 19 {
            return None;
        }
        let (head, tzd) = s.split_at(19);
        let (date, time) = head.split_once('T')?;
        let d: Vec<&str> = date.split('-').collect();
        let t: Vec<&str> = time.split(':').collect();
        if d.len() != 3 || t.len() != 3 {
            return None;
        }
        (
            [
                digits(d[0])?,
                digits(d[1])?,
                digits(d[2])?,
                digits(t[0])?,
                digits(t[1])?,
                digits(t[2])?,
            ],
            tzd_to_seconds(tzd)?,
        )
    };
    let [year, month, day, hour, minute, second] = fields;
    let ok = 1900 < year
        && year < 2100
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..=23).contains(&hour)
        && (0..=59).contains(&minute)
        && (0..=61).contains(&second);
    if !ok {
        return None;
    }
    // Like calendar.timegm: the first of the month plus (day - 1) days, so Feb 31 rolls over.
    let first = NaiveDate::from_ymd_opt(year as i32, month as u32, 1)?;
    let days = first.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?);
    let utc = (days.num_days() + day - 1) * 86400 + hour * 3600 + minute * 60 + second;
    Some(utc + zone)
}

/// The date forms `YYYY[-/]M[-/]D`, `M[-/]D[-/]YYYY` and `YYYYMMDDZ` (month always before day).
fn parse_date(s: &str) -> Option<(i64, i64, i64)> {
    let parts: Vec<&str> = s.split(['-', '/']).collect();
    if parts.len() == 3 {
        let len_ok = |p: &str, lo: usize, hi: usize| (lo..=hi).contains(&p.len());
        if len_ok(parts[0], 4, 4) && len_ok(parts[1], 1, 2) && len_ok(parts[2], 1, 2) {
            return Some((digits(parts[0])?, digits(parts[1])?, digits(parts[2])?));
        }
        if len_ok(parts[0], 1, 2) && len_ok(parts[1], 1, 2) && len_ok(parts[2], 4, 4) {
            return Some((digits(parts[2])?, digits(parts[0])?, digits(parts[1])?));
        }
        return None;
    }
    let body = s.strip_suffix('Z')?;
    // Byte offsets below: a multi-byte character would put them inside it.
    if body.len() != 8 || !body.is_ascii() {
        return None;
    }
    Some((
        digits(&body[0..4])?,
        digits(&body[4..6])?,
        digits(&body[6..8])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn p(s: &str) -> Result<i64, TimeError> {
        parse_time_with_offset(s, NOW, 0)
    }

    /// Found by fuzz/timestr: an 8-byte body with a two-byte character panicked on a byte slice.
    #[test]
    fn fuzz_non_ascii_date_is_refused_without_a_panic() {
        assert!(p("002\u{39f}\u{8}12Z").is_err());
    }

    #[test]
    fn now_integer_and_utc_stamp() {
        assert_eq!(p("now"), Ok(NOW));
        assert_eq!(p("1234"), Ok(1234));
        assert_eq!(p("20231114T221320Z"), Ok(NOW));
        assert_eq!(parse_timestamp("20231114T221320Z"), Some(NOW));
        assert_eq!(format_timestamp(NOW), "20231114T221320Z");
        assert_eq!(parse_timestamp("20231114T221320"), None);
        assert!(p("NOW").is_err());
    }

    #[test]
    fn w3_with_and_without_zone() {
        assert_eq!(p("2023-11-14T22:13:20Z"), Ok(NOW));
        assert_eq!(p("2023-11-14T23:13:20+01:00"), Ok(NOW));
        assert_eq!(p("2023-11-14T15:13:20-07:00"), Ok(NOW));
        // No zone: local standard time.
        assert_eq!(p("2023-11-14T22:13:20"), Ok(NOW));
        assert_eq!(
            parse_time_with_offset("2023-11-14T23:13:20", NOW, 3600),
            Ok(NOW)
        );
        assert_eq!(
            parse_time_with_offset("2023-11-14T18:43:20", NOW, -3 * 3600 - 1800),
            Ok(NOW)
        );
        // duplicity's reading of an explicit "-03:30" (2.5 h behind UTC).
        assert_eq!(p("2023-11-14T19:43:20-03:30"), Ok(NOW));
        assert_eq!(parse_w3("2002-04-26T04:22:01-07:00"), Some(1019820121));
    }

    #[test]
    fn intervals_are_case_sensitive() {
        assert_eq!(p("1h78m"), Ok(NOW - 3600 - 78 * 60));
        assert_eq!(p("3D4h"), Ok(NOW - 3 * 86400 - 4 * 3600));
        assert_eq!(p("2W"), Ok(NOW - 14 * 86400));
        assert_eq!(p("1M"), Ok(NOW - 30 * 86400));
        assert_eq!(p("1Y"), Ok(NOW - 365 * 86400));
        assert_eq!(p("10s"), Ok(NOW - 10));
        for bad in ["3D4H", "2w", "1d", "h", "5", "1h 2m", "", "D1"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        for bad in ["3D4H", "2w", "1d", "1h2"] {
            assert!(matches!(p(bad), Err(TimeError::BadTime(_))), "{bad}");
        }
        assert_eq!(parse_interval("2h30m"), Ok(9000));
    }

    #[test]
    fn dates_are_local_midnight() {
        let midnight = 1_699_920_000; // 2023-11-14T00:00:00Z
        for s in [
            "2023/11/14",
            "2023-11-14",
            "11/14/2023",
            "11-14-2023",
            "20231114Z",
            "2023-11/14",
        ] {
            assert_eq!(p(s), Ok(midnight), "{s}");
        }
        assert_eq!(
            parse_time_with_offset("2023-11-14", NOW, 3600),
            Ok(midnight - 3600)
        );
        assert_eq!(p("2023/2/3"), Ok(1_675_382_400));
        for bad in [
            "2023-13-01",
            "2023-11-32",
            "14/11/2023x",
            "1899-01-01",
            "yesterday",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        // Day numbers roll over as in calendar.timegm.
        assert_eq!(p("2023-02-31"), p("2023-03-03"));
    }

    #[test]
    fn error_names_the_string_and_the_forms() {
        let msg = p("tomorrow").unwrap_err().to_string();
        assert!(msg.contains("\"tomorrow\""), "{msg}");
        assert!(msg.contains("3D4h") && msg.contains("2024-01-02"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn asctime_pads_the_day() {
        assert_eq!(asctime_utc(1_704_164_645), "Tue Jan  2 03:04:05 2024");
        assert_eq!(asctime_utc(NOW), "Tue Nov 14 22:13:20 2023");
    }

    #[test]
    fn tzd_matches_duplicity() {
        assert_eq!(tzd_string(0), "Z");
        assert_eq!(tzd_string(3600), "+01:00");
        assert_eq!(tzd_string(-12600), "-04:30");
        assert_eq!(tzd_to_seconds("-04:30"), Some(12600));
        assert_eq!(tzd_to_seconds("+01:00"), Some(-3600));
        assert_eq!(tzd_to_seconds("-07:00"), Some(25200));
    }
}
