//! `berth exec`: an ad-hoc command on every matching host, each host's
//! output printed as it arrives, prefixed by the host's name.

use std::time::Duration;

use berth_proto::v1::{FleetExecRequest, OutputStream};
use berth_shared::exit;
use berth_shared::record::FleetJob;
use clap::Args;

use super::output::{Format, emit, progress};
use super::wire;
use super::{Failure, Outcome, Session};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Only hosts whose labels match, k=v,k2=v2 (automatic labels os, arch
    /// and hostname too); default: every host.
    #[arg(long, default_value = "")]
    pub selector: String,
    /// How long each host may run the command (e.g. 30s, 5m; at most 1h).
    #[arg(long, default_value = "60s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// The program and its arguments, after `--` (no shell: use
    /// `-- sh -c '...'` for one).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    berth_shared::time::parse_duration(text)
}

pub async fn exec(session: &mut Session, args: ExecArgs) -> Outcome {
    let format = session.format;
    let request = FleetExecRequest {
        selector: args.selector.clone(),
        argv: args.command.clone(),
        timeout_ms: u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    let mut events = session.client.exec(request).await?.into_inner();
    let mut job: Option<FleetJob> = None;
    while let Some(event) = events.message().await? {
        if let Some(finished) = event.job {
            job = Some(wire::fleet_job(finished));
            continue;
        }
        if format != Format::Json {
            for line in &event.lines {
                let marker = if line.stream() == OutputStream::Stderr {
                    "!"
                } else {
                    "|"
                };
                println!("{} {marker} {}", event.host, line.line);
            }
        }
        if !event.status.is_empty() {
            let code = event
                .exit_code
                .map_or_else(String::new, |code| format!(" (exit {code})"));
            let error = if event.error.is_empty() || event.status == "ok" {
                String::new()
            } else {
                format!(": {}", event.error)
            };
            progress(
                format,
                &format!("{}: {}{code}{error}", event.host, event.status),
            );
        }
    }
    let job = job.ok_or_else(|| {
        Failure::new(
            exit::FAILED,
            "the controller ended the exec without its result; see `berth audit`",
        )
    })?;
    let failed: Vec<&str> = job
        .hosts
        .iter()
        .filter(|host| host.status != "ok")
        .map(|host| host.host.as_str())
        .collect();
    emit(format, &job, || {
        let outcome = if failed.is_empty() {
            format!("job {}: ok on all {} hosts", job.id, job.hosts.len())
        } else {
            format!(
                "job {}: {} of {} hosts did not succeed: {}",
                job.id,
                failed.len(),
                job.hosts.len(),
                failed.join(", ")
            )
        };
        format!("{outcome}\nsee it again with: berth jobs show {}", job.id)
    });
    Ok(if failed.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
