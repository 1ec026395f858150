//! `berth-controller`: init a data directory, serve it, or run a throwaway
//! dev setup. The work lives in the `berth_controller` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_controller::dev::DevOptions;
use berth_controller::http::{HttpConfig, HttpListen};
use berth_controller::init::InitOptions;
use berth_controller::metrics::{MetricsConfig, MetricsListen};
use berth_controller::rotate::RotateOptions;
use berth_controller::server::ServeConfig;
use berth_controller::store_choice::StoreArgs;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "berth-controller",
    version,
    about = "berth's controller daemon"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the CA, the server certificate and the admin credential.
    Init {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        /// The name (DNS or IP) the CLI and agents use to reach this controller.
        #[arg(long)]
        name: Option<String>,
        /// Extra DNS names or IP addresses for the server certificate.
        #[arg(long = "san")]
        sans: Vec<String>,
        /// Port written into the admin credential.
        #[arg(long, default_value_t = 7443)]
        port: u16,
        /// Where to write the admin credential bundle (default DATA_DIR/admin.conf).
        #[arg(long)]
        admin_out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the server certificate and key with new ones from the same
    /// CA (before it expires, or for new names). Agents and CLI credentials
    /// trust the CA, so they keep working; restart the controller to use it.
    RotateServerCert {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        /// The name (DNS or IP) the CLI and agents use to reach this
        /// controller (default: the names of the current certificate).
        #[arg(long)]
        name: Option<String>,
        /// Extra DNS names or IP addresses (with --name).
        #[arg(long = "san", requires = "name")]
        sans: Vec<String>,
    },
    /// Make a new secrets key (keys/secrets.key) and encrypt every secret
    /// and registry password again under it. Stop the controller first;
    /// a crash at any point leaves a directory it starts from.
    RotateKey {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
    },
    /// Move this data directory's sled store into an empty PostgreSQL
    /// database, check every count, and make the directory use it. Stop
    /// the controller first; the sled store is left as it was.
    Migrate {
        /// The data directory whose store moves.
        #[arg(long, default_value = "/var/lib/berth-controller")]
        from: PathBuf,
        /// The database: postgres://USER@HOST:PORT/DATABASE.
        #[arg(long)]
        to: String,
        /// A file holding the PostgreSQL password (mode 0600).
        #[arg(long, env = "BERTH_STORE_PASSWORD_FILE")]
        store_password_file: Option<PathBuf>,
        /// The PEM certificate of the CA of PostgreSQL's server certificate.
        #[arg(long, env = "BERTH_STORE_CA")]
        store_ca: Option<PathBuf>,
    },
    /// Write the store (sled or PostgreSQL) to one file, as of one instant:
    /// a PostgreSQL store while controllers serve, a sled store with its
    /// controller stopped. Keep pki/ and keys/ with it.
    Backup {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to write (mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a backup into an empty store: a data directory holding only
    /// pki/ and keys/ (sled), or with --store an empty database.
    Restore {
        #[arg(long, default_value = "/var/lib/berth-controller")]
        data_dir: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to read.
        #[arg(long)]
        from: PathBuf,
    },
    /// Serve agents and the CLI.
    Serve {
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
    },
    /// A throwaway controller plus one local agent, for trying berth.
    Dev {
        /// Keep state here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        #[arg(long, default_value = "local")]
        agent_name: String,
        #[arg(long, default_value = "role=web")]
        agent_labels: String,
    },
}

/// `serve`'s flags for the HTTP API and the dashboard (boxed in
/// `Command::Serve`, which would be large otherwise).
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

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            // refinery's step-by-step lines are ours to say once (store/kv/pg/connect.rs);
            // PostgreSQL's notices (a migration table that exists) are not news.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,refinery_core=warn,postgres::config=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command(args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init {
            data_dir,
            name,
            sans,
            port,
            admin_out,
            store,
        } => {
            let name = match name {
                Some(name) => name,
                None => hostname(),
            };
            let out = berth_controller::init::init(&InitOptions {
                data_dir: data_dir.clone(),
                name,
                sans,
                port,
                admin_out,
                store,
            })
            .await?;
            println!("initialized {}", data_dir.display());
            println!(
                "admin credential: {} (mode 0600; copy it to ~/.config/berth/config on your workstation)",
                out.display()
            );
            println!(
                "start the controller: {}",
                berth_controller::init::serve_hint(&data_dir, port)
            );
            Ok(())
        }
        Command::RotateServerCert {
            data_dir,
            name,
            sans,
        } => {
            let info = berth_controller::rotate::rotate_server_cert(&RotateOptions {
                data_dir,
                name,
                sans,
            })?;
            println!(
                "new server certificate {} for {}, valid until {}",
                info.serial,
                info.names.join(", "),
                berth_shared::time::rfc3339(info.not_after_ms)
            );
            println!(
                "restart the controller to use it (systemctl restart berth-controller); agents reconnect by themselves"
            );
            Ok(())
        }
        Command::RotateKey { data_dir } => {
            let rotated = berth_controller::rotate_key::rotate_key(&data_dir).await?;
            let resealed = rotated.resealed;
            println!(
                "new secrets key {} (was {}): re-encrypted {} secret versions, {} registry passwords and {} webhooks and git hooks",
                rotated.new, rotated.old, resealed.secrets, resealed.registries, resealed.webhooks
            );
            println!("start the controller again (systemctl start berth-controller)");
            Ok(())
        }
        Command::Migrate {
            from,
            to,
            store_password_file,
            store_ca,
        } => {
            let target = StoreArgs {
                url: Some(to),
                password_file: store_password_file,
                ca: store_ca,
            };
            let copied = berth_controller::migrate::migrate(&from, &target, |tree, entries| {
                tracing::debug!(tree, entries, "copied");
            })
            .await?;
            print!("{}", berth_controller::migrate::report(&from, &copied));
            Ok(())
        }
        Command::Backup {
            data_dir,
            store,
            out,
        } => {
            let written = berth_controller::backup::backup(&data_dir, &store, &out)?;
            print!(
                "{}",
                berth_controller::backup::report("wrote", &out, &written)
            );
            Ok(())
        }
        Command::Restore {
            data_dir,
            store,
            from,
        } => {
            let restored = berth_controller::backup::restore(&data_dir, &store, &from)?;
            print!(
                "{}",
                berth_controller::backup::report("restored", &from, &restored)
            );
            Ok(())
        }
        Command::Serve {
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
        } => {
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
        Command::Dev {
            data_dir,
            listen,
            agent_name,
            agent_labels,
        } => {
            let agent_labels = berth_shared::labels::parse_labels(&agent_labels)
                .map_err(|err| anyhow::anyhow!("--agent-labels: {err}"))?;

            berth_controller::dev::run(
                DevOptions {
                    data_dir,
                    listen,
                    agent_name,
                    agent_labels,
                },
                on_signal(),
            )
            .await
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            trigger.cancel();
        }
    });
    shutdown
}
