//! Deploy windows: when an environment takes deploys. A window is written
//! `DAYS HH:MM-HH:MM [ZONE]`, several joined by `;`: `Mon-Fri 09:00-17:00
//! Europe/Berlin`, `Sat,Sun 10:00-12:00`, `* 22:00-02:00 UTC` (an end at
//! or before the start runs past midnight). Days are `Mon`..`Sun`, ranges
//! of them, or `*`; the zone is an IANA name (the system's tzdata), UTC
//! when left out. Outside every window a deploy, retry, redeploy, start
//! or rollback there is refused with the next opening, unless an admin
//! forces it, which the audit log records as such.

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::Role;

/// Longest window text.
const MAX_TEXT: usize = 200;

/// The days, Monday first, as written short and in full.
const DAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// One `DAYS HH:MM-HH:MM ZONE` part.
#[derive(Clone, Debug)]
struct Part {
    days: [bool; 7],
    start: Time,
    end: Time,
    zone: TimeZone,
}

/// A parsed window: open when any of its parts is.
#[derive(Clone, Debug)]
pub struct Window {
    parts: Vec<Part>,
}

fn day_index(day: Weekday) -> usize {
    day.to_monday_zero_offset() as usize
}

fn day(text: &str) -> Result<usize, String> {
    let lower = text.to_ascii_lowercase();
    DAYS.iter()
        .position(|(short, full)| lower == *short || lower == *full)
        .ok_or_else(|| format!("`{text}` is not a day; write Mon, Tue, Wed, Thu, Fri, Sat or Sun"))
}

fn days(text: &str) -> Result<[bool; 7], String> {
    let mut set = [false; 7];
    if text == "*" || text.eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    for item in text.split(',') {
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut at = from;
                loop {
                    set[at] = true;
                    if at == to {
                        break;
                    }
                    at = (at + 1) % 7;
                }
            }
            None => set[day(item)?] = true,
        }
    }
    Ok(set)
}

fn time(text: &str) -> Result<Time, String> {
    let bad = || format!("`{text}` is not a time of day; write it as HH:MM, e.g. 09:00");
    let (hour, minute) = text.split_once(':').ok_or_else(bad)?;
    let hour: i8 = hour.parse().map_err(|_| bad())?;
    let minute: i8 = minute.parse().map_err(|_| bad())?;
    if hour == 24 && minute == 0 {
        return Ok(Time::MAX);
    }
    Time::new(hour, minute, 0, 0).map_err(|_| bad())
}

fn part(text: &str) -> Result<Part, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (days_text, hours, zone) = match words.as_slice() {
        [days, hours] => (*days, *hours, "UTC"),
        [days, hours, zone] => (*days, *hours, *zone),
        _ => {
            return Err(format!(
                "`{text}` is not a window; write DAYS HH:MM-HH:MM [ZONE], e.g. Mon-Fri 09:00-17:00 Europe/Berlin"
            ));
        }
    };
    let (start, end) = hours
        .split_once('-')
        .ok_or_else(|| format!("`{hours}` is not a span of hours; write HH:MM-HH:MM"))?;
    let zone = TimeZone::get(zone).map_err(|_| {
        format!("`{zone}` is not a time zone this host knows; write an IANA name such as Europe/Berlin or UTC (Debian's tzdata)")
    })?;
    Ok(Part {
        days: days(days_text)?,
        start: time(start)?,
        end: time(end)?,
        zone,
    })
}

impl Window {
    /// Parses window text; the error says what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<Window, String> {
        if text.len() > MAX_TEXT {
            return Err(format!("a window is at most {MAX_TEXT} characters"));
        }
        let parts = text
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(part)
            .collect::<Result<Vec<_>, _>>()?;
        if parts.is_empty() {
            return Err("the window is empty; write DAYS HH:MM-HH:MM [ZONE]".into());
        }
        Ok(Window { parts })
    }

    /// Whether a deploy at `at` falls in the window.
    pub fn is_open(&self, at: Timestamp) -> bool {
        self.parts.iter().any(|part| part.is_open(at))
    }

    /// The next moment after `at` when the window opens (within a week).
    pub fn next_opening(&self, at: Timestamp) -> Option<Zoned> {
        self.parts
            .iter()
            .filter_map(|part| part.next_opening(at))
            .min_by_key(Zoned::timestamp)
    }
}

impl Part {
    fn is_open(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let (today, now) = (day_index(local.weekday()), local.time());
        if self.start < self.end {
            return self.days[today] && self.start <= now && now < self.end;
        }
        // Past midnight: the evening of a listed day, or the morning after.
        let yesterday = (today + 6) % 7;
        (self.days[today] && now >= self.start) || (self.days[yesterday] && now < self.end)
    }

    fn next_opening(&self, at: Timestamp) -> Option<Zoned> {
        let local = at.to_zoned(self.zone.clone());
        (0..8i64)
            .filter_map(|ahead| {
                let date = local.date().checked_add(ahead.days()).ok()?;
                let opening = date
                    .to_datetime(self.start)
                    .to_zoned(self.zone.clone())
                    .ok()?;
                (self.days[day_index(date.weekday())] && opening.timestamp() > at)
                    .then_some(opening)
            })
            .next()
    }
}

/// Refuses a deploy (or a retry, redeploy, start or rollback) to `app`
/// in `environment` outside the environment's window, naming the next
/// opening; an admin's `force` lets it through, and the audit log says so.
pub async fn check(
    context: &Context,
    caller: &Caller,
    app: &str,
    environment: &str,
    force: bool,
) -> Result<()> {
    let Some(text) = context
        .store
        .get_environment(app, environment)?
        .and_then(|record| record.window)
    else {
        return Ok(());
    };
    // Checked when it was set; a zone the host no longer knows reads as
    // "closed" with the reason, rather than as "open".
    let now = Timestamp::now();
    let window = Window::parse(&text);
    if window.as_ref().is_ok_and(|window| window.is_open(now)) {
        return Ok(());
    }
    let target = format!("{app}/{environment}");
    if force && caller.principal.role == Role::Admin {
        context.store.audit(
            &caller.who(),
            "deploy.outside-window",
            &target,
            &format!("forced by an admin outside `{text}`"),
        )?;
        context.store.flush().await?;
        return Ok(());
    }
    let next = match &window {
        Ok(window) => match window.next_opening(now) {
            Some(at) => format!(
                "; it opens next at {} ({})",
                at.strftime("%a %Y-%m-%d %H:%M %Z"),
                berth_shared::time::age(at.timestamp().as_millisecond())
            ),
            None => String::new(),
        },
        Err(err) => format!(" (the window cannot be read here: {err})"),
    };
    let force_hint = if caller.principal.role == Role::Admin {
        "deploy anyway with --force (audited)"
    } else {
        "an admin may deploy anyway with --force (audited)"
    };
    Err(Error::new(
        Code::EnvironmentOutsideWindow,
        format!("{target} takes deploys only within `{text}`{next}; {force_hint}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("an instant")
    }

    #[test]
    fn office_hours_in_berlin_follow_its_clock() {
        let window = Window::parse("Mon-Fri 09:00-17:00 Europe/Berlin").expect("window");
        // Monday 2026-12-07 08:30 UTC is 09:30 in Berlin (CET, UTC+1).
        assert!(window.is_open(at("2026-12-07T08:30:00Z")));
        assert!(
            !window.is_open(at("2026-12-07T07:30:00Z")),
            "08:30 in Berlin"
        );
        assert!(
            !window.is_open(at("2026-12-07T16:00:00Z")),
            "17:00 in Berlin ends it"
        );
        // Saturday: closed; it opens on Monday at 09:00 Berlin time.
        let next = window
            .next_opening(at("2026-12-05T12:00:00Z"))
            .expect("opens");
        assert_eq!(next.timestamp(), at("2026-12-07T08:00:00Z"));
        // In summer Berlin is UTC+2.
        assert!(window.is_open(at("2026-07-06T07:30:00Z")));
    }

    #[test]
    fn a_window_past_midnight_and_several_parts() {
        let window = Window::parse("Fri 22:00-02:00; sat,sun 10:00-12:00 UTC").expect("window");
        assert!(window.is_open(at("2026-12-04T23:00:00Z")), "Friday night");
        assert!(window.is_open(at("2026-12-05T01:00:00Z")), "early Saturday");
        assert!(!window.is_open(at("2026-12-05T03:00:00Z")));
        assert!(
            window.is_open(at("2026-12-06T11:00:00Z")),
            "Sunday late morning"
        );
        let next = window
            .next_opening(at("2026-12-05T03:00:00Z"))
            .expect("opens");
        assert_eq!(next.timestamp(), at("2026-12-05T10:00:00Z"));
        assert!(
            Window::parse("* 00:00-24:00")
                .expect("always")
                .is_open(at("2026-12-05T03:00:00Z"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (text, said) in [
            ("Mon-Fri", "not a window"),
            ("Mon-Frx 09:00-17:00", "not a day"),
            ("Mon 9-17", "not a time of day"),
            ("Mon 09:00", "not a span of hours"),
            ("Monx 09:00-10:00", "not a day"),
            ("Mon 09:00-25:00", "not a time of day"),
            ("Mon 09:00-17:00 Mars/Olympus", "not a time zone"),
            ("", "empty"),
        ] {
            let err = Window::parse(text).expect_err(text);
            assert!(err.contains(said), "{text}: {err}");
        }
    }
}
