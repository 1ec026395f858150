//! `berth logs`: stored lines, and with `-f` live ones until the deployment
//! ends.

use std::time::{Duration, SystemTime};

use berth_proto::v1::{GetLogsRequest, LogsExpired};
use berth_shared::exit;
use berth_shared::id::DeploymentId;
use berth_shared::record::{LogEntry, Timestamp};
use clap::{Args, ValueEnum};

use super::output::Format;
use super::{Failure, Outcome, Session};
use std::io::Write as _;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Deployment id, or an app name (its current deployment).
    pub target: String,
    /// With an app name: its environment (needed when it has several).
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Keep following new lines until the deployment ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Only this host's lines.
    #[arg(long)]
    pub host: Option<String>,
    /// Only this stage's lines (setup, stop, ...).
    #[arg(long)]
    pub stage: Option<String>,
    /// Only this stream's lines: the scripts' stdout or stderr, berth's own
    /// lines (system), or an app container's output.
    #[arg(long, value_enum)]
    pub stream: Option<Stream>,
    /// Only lines at this level or above (info < warn < error). error: a
    /// berth line reporting a failure (a stage's failure message, or one
    /// starting with `error:`); warn: stderr lines and berth lines starting
    /// with `warning:`; info: everything else.
    #[arg(long, value_enum)]
    pub level: Option<Level>,
    /// Only lines from this time on: a duration ago (10m, 2h, 1h 30m) or an
    /// RFC 3339 time (2026-10-23T02:00:00Z, 2026-10-23T04:00:00+02:00).
    #[arg(long, value_name = "T", value_parser = parse_since)]
    pub since: Option<Since>,
    /// Only the last N lines that pass the other filters.
    #[arg(long, default_value_t = 0)]
    pub tail: u32,
    /// The output of the app's resource NAME (`[resources.NAME]`) on its
    /// hosts instead: its last lines (--tail, 100 by default), with -f live.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["stage", "stream", "level"])]
    pub resource: Option<String>,
}

/// A log stream, for `--stream`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stream {
    Stdout,
    Stderr,
    System,
    Container,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
            Stream::Container => "container",
        }
    }
}

/// A line level, for `--level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The start of `--since`: that long ago, or a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    Ago(Duration),
    At(SystemTime),
}

impl Since {
    /// The start as Unix milliseconds, given the time now.
    fn to_ms(self, now_ms: i64) -> i64 {
        match self {
            Since::Ago(duration) => {
                now_ms.saturating_sub(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
            }
            Since::At(time) => berth_shared::time::unix_ms(time),
        }
    }
}

/// Parses `--since`: a duration (`10m`) or an RFC 3339 time, with `Z` or
/// a `+HH:MM`/`-HH:MM` offset.
fn parse_since(text: &str) -> Result<Since, String> {
    let text = text.trim();
    if let Ok(duration) = humantime::parse_duration(text) {
        return Ok(Since::Ago(duration));
    }
    berth_shared::time::parse_rfc3339(text)
        .map(Since::At)
        .ok_or_else(|| {
        format!(
            "`{text}` is neither a duration nor an RFC 3339 time; write a duration ago like 10m or 2h, or a time like 2026-10-23T02:00:00Z"
        )
    })
}

/// What `berth logs` says on stderr when the retention sweeper deleted
/// lines of the deployment.
fn expired_notice(expired: &LogsExpired) -> String {
    format!(
        "logs before {} were deleted by the retention policy ({}); see berth-controller serve --log-retention",
        berth_shared::time::rfc3339(expired.before_ms),
        berth_shared::time::format_duration(Duration::from_millis(expired.retention_ms))
    )
}

/// Bytes of output gathered before they are written.
const OUT_BLOCK: usize = 64 * 1024;

/// Writes and empties `out`; a closed stdout (`berth logs -f | head`) ends
/// the command quietly, with success.
fn write_out(out: &mut Vec<u8>) -> Result<(), Failure> {
    if out.is_empty() {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(out).and_then(|()| stdout.flush());
    out.clear();
    match written {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(Failure::new(exit::OK, String::new()))
        }
        Err(err) => Err(Failure::new(
            exit::FAILED,
            format!("cannot write the log lines to stdout: {err}"),
        )),
        Ok(()) => Ok(()),
    }
}

pub async fn logs(session: &mut Session, args: LogsArgs) -> Outcome {
    let id = if args.target.parse::<DeploymentId>().is_ok() && args.environment.is_none() {
        args.target.clone()
    } else {
        super::resolve::deployment(session, &args.target, args.environment.as_deref())
            .await?
            .id
            .to_string()
    };
    let request = GetLogsRequest {
        deployment_id: id.clone(),
        follow: args.follow,
        host: args.host.unwrap_or_default(),
        stage: args.stage.unwrap_or_default(),
        tail: args.tail,
        // `-f` on a deployed container app goes on with the app's output.
        app_output: args.follow,
        stream: args.stream.map(Stream::as_str).unwrap_or_default().into(),
        level: args.level.map(Level::as_str).unwrap_or_default().into(),
        since_ms: args
            .since
            .map(|since| since.to_ms(berth_shared::time::now_ms()))
            .unwrap_or(0),
        after_seq: Default::default(),
        resource: args.resource.unwrap_or_default(),
    };
    let mut stream = session.client.get_logs(request).await?.into_inner();
    // Lines are written in blocks: whatever arrived together goes out in
    // one write, and nothing waits once the stream has nothing ready.
    let mut out = Vec::with_capacity(OUT_BLOCK);
    loop {
        let next = match futures_util::FutureExt::now_or_never(stream.message()) {
            Some(next) => next,
            None => {
                write_out(&mut out)?;
                stream.message().await
            }
        };
        let record = match next {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(status) => {
                // What arrived before the failure is shown first.
                write_out(&mut out)?;
                return Err(status.into());
            }
        };
        if let Some(expired) = &record.expired {
            write_out(&mut out)?;
            eprintln!("{}", expired_notice(expired));
            continue;
        }
        let entry = LogEntry {
            host: record.host,
            stage: record.stage,
            stream: record.stream,
            seq: record.seq,
            ts: Timestamp(record.ts_ms),
            line: record.line,
        };
        match session.format {
            Format::Json => {
                let _ = serde_json::to_writer(&mut out, &entry);
                out.push(b'\n');
            }
            Format::Table | Format::Wide => {
                let time = entry.ts.to_string();
                let clock = time.get(11..23).unwrap_or(&time);
                let marker = match entry.stream.as_str() {
                    "stderr" => "!",
                    "system" => "#",
                    _ => "|",
                };
                let _ = writeln!(
                    out,
                    "{clock} {} {} {marker} {}",
                    entry.host, entry.stage, entry.line
                );
            }
        }
        if out.len() >= OUT_BLOCK {
            write_out(&mut out)?;
        }
    }
    write_out(&mut out)?;
    if args.follow
        && let Some(notice) = super::replaced::notice(session, &id).await
    {
        eprintln!("{notice}");
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use berth_proto::v1::LogsExpired;

    use super::{Since, expired_notice, parse_since};

    const NOW_MS: i64 = 1_800_000_000_000;

    #[test]
    fn since_reads_durations_and_times() {
        let check = |text: &str, expected_ms: i64| {
            let since = parse_since(text).unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(since.to_ms(NOW_MS), expected_ms, "{text}");
        };
        check("10m", NOW_MS - 600_000);
        check("2h", NOW_MS - 7_200_000);
        check(" 1h 30m ", NOW_MS - 5_400_000);
        check("2026-10-23T02:00:00Z", 1_792_720_800_000);
        check("2026-10-23T02:00:00.250Z", 1_792_720_800_250);
        check("2026-10-23T04:00:00+02:00", 1_792_720_800_000);
        check("2026-10-22T21:30:00-04:30", 1_792_720_800_000);
        assert_eq!(
            parse_since("1970-01-01T00:00:00Z"),
            Ok(Since::At(UNIX_EPOCH))
        );
    }

    #[test]
    fn since_rejects_other_text_naming_the_accepted_forms() {
        for text in [
            "yesterday",
            "",
            "10 parsecs",
            "2026-13-01T00:00:00Z",
            "2026-10-23T02:00:00+25:00",
        ] {
            let err = parse_since(text).expect_err(text);
            assert!(
                err.contains("10m") && err.contains("2026-10-23T02:00:00Z"),
                "{err}"
            );
        }
    }

    #[test]
    fn notice_names_the_time_the_policy_and_the_flag() {
        let notice = expired_notice(&LogsExpired {
            before_ms: 1_792_720_800_000,
            retention_ms: 30 * 24 * 3600 * 1000,
        });
        assert_eq!(
            notice,
            "logs before 2026-10-23T02:00:00.000Z were deleted by the retention policy (30days); see berth-controller serve --log-retention"
        );
    }
}
