//! Wall-clock helpers: berth stores times as Unix milliseconds and prints
//! them as RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 text (UTC, millisecond precision) for Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let clamped = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(clamped)).to_string()
}

/// Parses a human duration such as `90s`, `5m` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("`{text}` is not a duration ({err}); write it like 30s, 5m or 1h"))
}

/// An RFC 3339 time with `Z` or a `+HH:MM`/`-HH:MM` offset (humantime
/// reads only UTC, so an offset is applied here).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let split = text.len().checked_sub(6)?;
    let (local, offset) = match (text.get(..split), text.get(split..)) {
        (Some(local), Some(offset))
            if (offset.starts_with('+') || offset.starts_with('-'))
                && offset.as_bytes()[3] == b':'
                && local.len() > 10 =>
        {
            (local, offset)
        }
        _ => return humantime::parse_rfc3339_weak(text).ok(),
    };
    let hours: u64 = offset.get(1..3)?.parse().ok()?;
    let minutes: u64 = offset.get(4..6)?.parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let shift = Duration::from_secs(hours * 3600 + minutes * 60);
    let local = humantime::parse_rfc3339_weak(local).ok()?;
    if offset.starts_with('+') {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    }
}

/// Unix milliseconds of a point in time (negative before 1970).
pub fn unix_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Short human text for a duration, e.g. `1m 5s`.
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn parses_rfc3339_with_offsets() {
        let ms = |text: &str| parse_rfc3339(text).map(unix_ms);
        assert_eq!(ms("2026-10-23T02:00:00Z"), Some(1_792_720_800_000));
        assert_eq!(ms("2026-10-23T04:00:00+02:00"), Some(1_792_720_800_000));
        assert_eq!(ms("2026-10-22T21:30:00-04:30"), Some(1_792_720_800_000));
        for junk in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-10-23T02:00:00+25:00",
        ] {
            assert_eq!(ms(junk), None, "{junk}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.500Z");
    }
}

/// How far `then_ms` is from now, in its largest unit: `just now`,
/// `42 s ago`, `5 min ago`, `3 h ago`, `12 d ago`, or ahead `in 89 d`
/// (the dashboard's relative times).
pub fn age(then_ms: i64) -> String {
    age_at(now_ms(), then_ms)
}

/// [`age`] as of `now_ms`.
pub fn age_at(now_ms: i64, then_ms: i64) -> String {
    let seconds = (now_ms.saturating_sub(then_ms) / 1000).unsigned_abs();
    // A minute ahead is a clock's skew, not the future.
    if then_ms > now_ms && seconds < 60 {
        return "just now".into();
    }
    let span = match seconds {
        0..=4 => return "just now".into(),
        5..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        3600..=86_399 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86_400),
    };
    if then_ms > now_ms {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod age_tests {
    use super::age_at;

    #[test]
    fn ages_are_said_in_their_largest_unit() {
        let now = 1_000_000_000_000;
        for (ago_ms, said) in [
            (0, "just now"),
            (-5_000, "just now"),
            (42_000, "42 s ago"),
            (5 * 60_000 + 10_000, "5 min ago"),
            (3 * 3_600_000, "3 h ago"),
            (12 * 86_400_000, "12 d ago"),
            (-90 * 86_400_000, "in 90 d"),
            (-2 * 3_600_000 - 5_000, "in 2 h"),
        ] {
            assert_eq!(age_at(now, now - ago_ms), said);
        }
    }
}
