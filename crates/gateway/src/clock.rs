//! Wall-clock times as the books store them (milliseconds since the Unix epoch, UTC) and as
//! people read and write them (`2026-11-29 07:15:24`, `--since 2h`).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Seconds since the Unix epoch (the `created` field of OpenAI responses).
pub fn now_secs() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

/// Midnight UTC of the day holding `ms`.
pub fn day_start_ms(ms: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    ms.div_euclid(DAY) * DAY
}

/// Midnight UTC of the first day of the month holding `ms`.
pub fn month_start_ms(ms: i64) -> i64 {
    let d = DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive();
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1)
        .and_then(|f| f.and_hms_opt(0, 0, 0))
        .map_or(0, |f| f.and_utc().timestamp_millis())
}

/// `2026-11-29 07:15:24` (UTC).
pub fn format_utc(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A `--since` value: a duration back from `now_ms` (`90s`, `30m`, `2h`, `7d`, `2w`) or a
/// UTC date or time (`2026-11-29`, `2026-11-29T07:00:00`, RFC 3339).
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    let unit_ms = |u: &str| match u {
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        "w" => Some(7 * 86_400_000),
        _ => None,
    };
    if let Some(i) = s.find(|c: char| !c.is_ascii_digit()).filter(|&i| i > 0) {
        if let (Ok(n), Some(u)) = (s[..i].parse::<i64>(), unit_ms(&s[i..])) {
            return Ok(now_ms - n.saturating_mul(u));
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(Utc.from_utc_datetime(&t).timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis()));
    }
    Err(format!(
        "`{s}` is neither a duration (90s, 30m, 2h, 7d, 2w) nor a UTC date or time (2026-11-29, 2026-11-29T07:00:00)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_formats_and_since() {
        // 2024-03-15T12:00:00Z
        let t = 1_710_504_000_000;
        assert_eq!(month_start_ms(t), 1_709_251_200_000);
        assert_eq!(day_start_ms(t), 1_710_460_800_000);
        assert_eq!(format_utc(t), "2024-03-15 12:00:00");
        assert_eq!(parse_since("2h", t).unwrap(), t - 7_200_000);
        assert_eq!(parse_since("2024-03-15", t).unwrap(), 1_710_460_800_000);
        assert_eq!(parse_since("2024-03-15T12:00:00", t).unwrap(), t);
        assert_eq!(parse_since("2024-03-15T12:00:00Z", t).unwrap(), t);
        assert!(parse_since("yesterday", t).unwrap_err().contains("2h"));
    }
}
