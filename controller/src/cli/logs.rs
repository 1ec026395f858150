//! `berth logs`: stored lines, and with `-f` live ones until the deployment
//! ends.

use berth_proto::v1::GetLogsRequest;
use berth_shared::exit;
use berth_shared::record::{LogEntry, Timestamp};
use clap::Args;

use super::output::Format;
use super::{Outcome, Session};

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Deployment id.
    pub id: String,
    /// Keep following new lines until the deployment ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Only this host's lines.
    #[arg(long)]
    pub host: Option<String>,
    /// Only this stage's lines (setup, stop, ...).
    #[arg(long)]
    pub stage: Option<String>,
    /// Only the last N lines.
    #[arg(long, default_value_t = 0)]
    pub tail: u32,
}

pub async fn logs(session: &mut Session, args: LogsArgs) -> Outcome {
    let request = GetLogsRequest {
        deployment_id: args.id,
        follow: args.follow,
        host: args.host.unwrap_or_default(),
        stage: args.stage.unwrap_or_default(),
        tail: args.tail,
        // `-f` on a deployed container app goes on with the app's output.
        app_output: args.follow,
    };
    let mut stream = session.client.get_logs(request).await?.into_inner();
    while let Some(record) = stream.message().await? {
        let entry = LogEntry {
            host: record.host,
            stage: record.stage,
            stream: record.stream,
            seq: record.seq,
            ts: Timestamp(record.ts_ms),
            line: record.line,
        };
        match session.format {
            Format::Json => println!("{}", serde_json::to_string(&entry).unwrap_or_default()),
            Format::Table => {
                let time = entry.ts.to_string();
                let clock = time.get(11..23).unwrap_or(&time);
                let marker = match entry.stream.as_str() {
                    "stderr" => "!",
                    "system" => "#",
                    _ => "|",
                };
                println!(
                    "{clock} {} {} {marker} {}",
                    entry.host, entry.stage, entry.line
                );
            }
        }
    }
    Ok(exit::OK)
}
