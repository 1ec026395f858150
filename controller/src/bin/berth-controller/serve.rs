//! `berth-controller serve`: its flags and the server's configuration
//! made from them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use berth_controller::http::{HttpConfig, HttpListen};
use berth_controller::metrics::{MetricsConfig, MetricsListen};
use berth_controller::server::ServeConfig;
use berth_controller::store_choice::StoreArgs;

use super::on_signal;

/// `serve`'s flags.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[arg(long, default_value = "/var/lib/berth-controller")]
    data_dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, default_value = "0.0.0.0:7443")]
    listen: SocketAddr,
    /// How long an agent may be away before its running tasks are `lost`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    lost_grace: Duration,
    /// How long log lines are kept (per deployment, from its creation);
    /// swept hourly, or every tenth of this when that is shorter.
    #[arg(long, default_value = "30days", value_parser = parse_duration)]
    log_retention: Duration,
    /// Lifetime of agent certificates; agents renew at two thirds.
    #[arg(long, default_value = "30days", value_parser = parse_duration)]
    agent_cert_lifetime: Duration,
    /// Deployments (deploy, retry, redeploy, rollback) one app may
    /// trigger per minute; 0 for no limit.
    #[arg(long, default_value_t = berth_controller::server::DEFAULT_TRIGGER_LIMIT)]
    trigger_limit: u32,
    /// Failed join attempts (unknown, used-up, revoked or expired
    /// tokens) one source address may make per minute before its
    /// joins are refused until the minute is over; successful joins
    /// are not counted. 0 for no limit.
    #[arg(long, default_value_t = berth_controller::server::DEFAULT_JOIN_FAILURE_LIMIT)]
    join_failure_limit: u32,
    /// Size the blob store (bundles, image archives, build results) is
    /// kept under, e.g. 20g; the least recently used blobs no live
    /// deployment needs are deleted past it.
    #[arg(long, default_value = "20g", value_parser = berth_shared::manifest::parse_size)]
    blob_budget: u64,
    /// Where blob files are kept; default DATA_DIR/blobs. Controllers
    /// of one PostgreSQL store that take over from each other share
    /// one directory (on the same disk, or a network file system).
    #[arg(long, env = "BERTH_BLOB_DIR")]
    blob_dir: Option<PathBuf>,
    /// Connections served at once; more are closed right after accept,
    /// before TLS, and counted in the log. Default 16384, or less to
    /// stay under the open-file limit (LimitNOFILE).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Connections one source address may hold at once; more are closed
    /// right after accept. Raise it when many agents share one address
    /// (NAT).
    #[arg(long, default_value_t = berth_controller::listener::DEFAULT_MAX_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_address: u32,
    /// How long a connection without a client certificate (one that
    /// may only join) is kept, from accept; a connection with a
    /// certificate must have sent something by then.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    unauthenticated_connection_age: Duration,
    /// How long a deploy, rollback or stop by an operator in a
    /// protected environment waits for its approval (`berth approve`)
    /// before it expires (a waiting deployment becomes `canceled`).
    #[arg(long, default_value = "1h", value_parser = parse_approval_ttl)]
    approval_ttl: Duration,
    /// How long a webhook endpoint may keep failing before it is
    /// disabled (its deliveries are retried with a growing backoff
    /// until then).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    webhook_give_up: Duration,
    /// The HTTP API and the dashboard.
    #[command(flatten)]
    http: Box<HttpArgs>,
    /// Where `GET /metrics` (Prometheus, OpenMetrics text) listens, in
    /// plain HTTP (`off` for none). Default: 127.0.0.1:9464, skipped
    /// with a warning when that port is taken. Another address than
    /// loopback is warned about: the metrics name apps.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<MetricsListen>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        data_dir,
        store,
        listen,
        lost_grace,
        log_retention,
        agent_cert_lifetime,
        trigger_limit,
        join_failure_limit,
        blob_budget,
        blob_dir,
        max_connections,
        max_connections_per_address,
        unauthenticated_connection_age,
        approval_ttl,
        webhook_give_up,
        http,
        metrics_listen,
    } = args;
    let HttpArgs {
        http_listen,
        http_cert,
        http_key,
        session_ttl,
        public_url,
        trusted_proxy,
    } = *http;
    let shutdown = on_signal();
    berth_controller::server::run(
        ServeConfig {
            data_dir,
            store,
            listen,
            lost_grace,
            log_retention,
            agent_cert_lifetime,
            trigger_limit,
            join_failure_limit,
            blob_budget,
            blob_dir,
            connections: berth_controller::listener::Limits {
                max_connections,
                max_per_address: max_connections_per_address,
                unauthenticated_age: unauthenticated_connection_age,
            },
            http: HttpConfig {
                best_effort: http_listen.is_none(),
                listen: http_listen.unwrap_or_else(HttpListen::default_address),
                cert: http_cert,
                key: http_key,
                session_ttl,
                public_url,
                trusted_proxies: trusted_proxy,
            },
            approval_ttl,
            webhook_give_up,
            metrics: match metrics_listen {
                Some(listen) => MetricsConfig {
                    listen,
                    best_effort: false,
                },
                None => MetricsConfig::default_address(),
            },
        },
        shutdown,
        |listening| {
            // The HTTP line first: whoever waits for "listening on"
            // has both then.
            if let Some((_, url)) = &listening.http {
                println!("berth-controller HTTP API on {url}");
            }
            if let Some(address) = &listening.metrics {
                println!("berth-controller metrics on http://{address}/metrics");
            }
            println!("berth-controller listening on {}", listening.grpc);
        },
    )
    .await
}

/// `serve`'s flags for the HTTP API and the dashboard (boxed in
/// [`ServeArgs`], which would be large otherwise).
#[derive(clap::Args)]
struct HttpArgs {
    /// Where the HTTP API listens (`off` for none). Plain HTTP on a
    /// loopback address only; any other address serves HTTPS with the
    /// controller's server certificate or --http-cert/--http-key.
    /// Default: 127.0.0.1:7080, skipped with a warning when that port is
    /// taken.
    #[arg(long)]
    http_listen: Option<HttpListen>,
    /// A certificate chain (PEM) for the HTTP API's HTTPS.
    #[arg(long, value_name = "FILE", requires = "http_key")]
    http_cert: Option<PathBuf>,
    /// The private key (PEM) of --http-cert.
    #[arg(long, value_name = "FILE", requires = "http_cert")]
    http_key: Option<PathBuf>,
    /// How long a web sign-in lasts before the browser must sign in
    /// again.
    #[arg(long, default_value = "12h", value_parser = parse_duration)]
    session_ttl: Duration,
    /// The address people open the dashboard at, when a proxy in front
    /// gives it another name (setup links point there), like
    /// https://berth.example.com.
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    public_url: Option<String>,
    /// A proxy in front of the HTTP API (e.g. 127.0.0.1 for Caddy on
    /// this host) whose X-Forwarded-For names the client, for the
    /// sign-in limits per address; may repeat.
    #[arg(long, value_name = "IP")]
    trusted_proxy: Vec<std::net::IpAddr>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    berth_shared::time::parse_duration(text)
}

fn parse_approval_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_duration(text)?;
    if ttl < Duration::from_secs(1) {
        return Err(format!(
            "`{text}` would expire every approval at once; give at least 1s, e.g. 1h"
        ));
    }
    Ok(ttl)
}

fn parse_public_url(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match host {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(url.into()),
        _ => Err(format!(
            "`{text}` is not a URL like https://berth.example.com (http:// or https://, a host, maybe a port and a path)"
        )),
    }
}
