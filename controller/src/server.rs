//! `berth-controller serve`: loads the data directory and runs the gRPC
//! services on one mTLS listener, and the HTTP API on its own (`http`),
//! until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use berth_proto::MAX_MESSAGE_BYTES;
use berth_proto::v1::agent_server::AgentServer;
use berth_proto::v1::cli_server::CliServer;
use berth_proto::v1::enroll_server::EnrollServer;
use berth_shared::pki::Authority;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tracing::{error, info, warn};

use crate::blob::BlobStore;
use crate::dispatcher::Dispatcher;
use crate::grpc::auth::authenticate;
use crate::grpc::{AgentApi, CliApi, EnrollApi};
use crate::hub::Hub;
use crate::paths::DataDir;
use crate::registry::Registry;
use crate::store::Member;

mod once_per_store;
use crate::store::{PrincipalKind, Store};
use once_per_store::{lost, once_per_store};

/// Default grace before the tasks of an agent that went away are `lost`.
pub const DEFAULT_LOST_GRACE: Duration = Duration::from_secs(60);
/// How often agents heartbeat.
pub const HEARTBEAT_SECS: u32 = 5;

/// Settings of a running controller.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Where the store is kept (see `store_choice.rs`).
    pub store: crate::store_choice::StoreArgs,
    pub listen: SocketAddr,
    pub lost_grace: Duration,
    /// Lifetime of agent certificates (agents renew at two thirds).
    pub agent_cert_lifetime: Duration,
    /// How long log lines are kept.
    pub log_retention: Duration,
    /// Deployments one app may trigger per minute; 0 for no limit.
    pub trigger_limit: u32,
    /// Failed joins one source address may make per minute; 0 for no limit.
    pub join_failure_limit: u32,
    /// Size the blob store is kept under by evicting unneeded blobs.
    pub blob_budget: u64,
    /// Where blob files are kept (`--blob-dir`); `None` for DATA_DIR/blobs.
    pub blob_dir: Option<PathBuf>,
    /// What peers may hold of the listener (connection caps, the lifetime
    /// of connections without a client certificate).
    pub connections: crate::listener::Limits,
    /// The HTTP API's address and certificate.
    pub http: crate::http::HttpConfig,
    /// How long a request in a protected environment waits for its
    /// approval before it expires.
    pub approval_ttl: Duration,
    /// How long a webhook endpoint may fail before it is disabled.
    pub webhook_give_up: Duration,
    /// Where `GET /metrics` listens, if anywhere.
    pub metrics: crate::metrics::MetricsConfig,
}

/// Where a started controller listens.
#[derive(Clone, Debug)]
pub struct Listening {
    /// The gRPC listener (agents and the CLI).
    pub grpc: SocketAddr,
    /// The HTTP API's base URL, unless it is off.
    pub http: Option<(SocketAddr, String)>,
    /// `GET /metrics`' address, unless it is off.
    pub metrics: Option<SocketAddr>,
}

/// Failed joins one source address may make per minute unless
/// `--join-failure-limit` says otherwise.
pub const DEFAULT_JOIN_FAILURE_LIMIT: u32 = 20;

/// The blob store's size budget unless `--blob-budget` says otherwise.
pub const DEFAULT_BLOB_BUDGET: u64 = 20 << 30;

/// Deployments one app may trigger per minute unless `--trigger-limit`
/// says otherwise.
pub const DEFAULT_TRIGGER_LIMIT: u32 = 10;

/// How long log lines are kept unless `--log-retention` says otherwise.
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Everything the services share.
pub struct Context {
    pub store: Store,
    pub authority: Authority,
    pub registry: Arc<Registry>,
    pub hub: Hub,
    pub blobs: BlobStore,
    pub dispatcher: Arc<Dispatcher>,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
    pub ca_pem: String,
    pub heartbeat_secs: u32,
    /// The per-app trigger rate limit, when there is one.
    pub triggers: Option<crate::limit::RateLimit<String>>,
    /// Web sessions' settings and the sign-in limits.
    pub web: crate::ops::sessions::Web,
    /// The secrets key (`keys/secrets.key`) that seals secrets and
    /// registry passwords (`ops/secrets.rs`); its `Debug` shows its id only.
    pub secret_key: Arc<crate::crypto::SecretKey>,
    /// How long a request in a protected environment waits for its
    /// approval (`ops/approvals.rs`).
    pub approval_ttl: Duration,
    /// The Prometheus metrics (`metrics.rs`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This controller among the others of its store (`cluster.rs`).
    pub cluster: Arc<crate::cluster::Cluster>,
}

/// Runs the controller until `shutdown` is cancelled. Calls `on_listening`
/// with the bound addresses once the listeners are up.
pub async fn run(
    config: ServeConfig,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(&Listening),
) -> Result<()> {
    let dir = DataDir::new(&config.data_dir);
    let read = |path: PathBuf| match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => Err(anyhow::anyhow!(
            berth_shared::ownership::permission_denied(&path, dir.root())
        )),
        Err(err) => Err(anyhow::Error::new(err).context(format!(
            "read {}; is this a data directory made by `berth-controller init`?",
            path.display()
        ))),
    };
    let ca_pem = read(dir.ca_cert())?;
    let authority = Authority::load(&ca_pem, &read(dir.ca_key())?)
        .context("load the CA")?
        .with_agent_lifetime(config.agent_cert_lifetime);
    let tls = crate::listener::server_config(
        &read(dir.server_cert())?,
        &read(dir.server_key())?,
        &ca_pem,
    )?;
    let store = crate::store_choice::open(&dir, &config.store)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let local = listener.local_addr().context("read the bound address")?;
    // Held until `run` returns: offline commands refuse while it is, and
    // the other controllers of a PostgreSQL store see this one serve.
    let me = Member {
        id: format!("{:08x}", rand::random::<u32>()),
        host: host_name().unwrap_or_else(|| "unknown".into()),
        pid: std::process::id(),
        listen: local.to_string(),
        since_ms: berth_shared::time::now_ms().cast_unsigned(),
    };
    let mut membership = store
        .join(&me)
        .context("join the store's controllers")?
        .map(|lock| lock.watch(Duration::from_secs(1)));
    let bus = store
        .bus()
        .context("listen to the store's other controllers")?;
    let secret_key = crate::key_file::open_for_serve(&dir, &store)?;
    let adopted = store
        .adopt_user_principals()
        .context("give users their records")?;
    if adopted > 0 {
        info!(
            users = adopted,
            "user records made for credentials from before them"
        );
    }
    if config.blob_dir.is_none() && bus.is_some() {
        warn!(
            "no --blob-dir: blobs are kept in this controller's data directory; when several controllers serve from this store, give them all --blob-dir on one shared directory, or a bundle uploaded to one cannot be fetched through another"
        );
    }
    let blobs = BlobStore::open(&config.blob_dir.clone().unwrap_or_else(|| dir.blobs()))
        .await
        .context("open the blob store")?;
    let registry = Arc::new(Registry::default());
    let metrics = Arc::new(crate::metrics::Metrics::new(registry.clone()));
    store.observe(metrics.clone());
    let hub = Hub::default();
    let (bus, heard) = bus.unzip();
    let cluster = Arc::new(crate::cluster::Cluster::new(me, bus));
    cluster.forward(&hub);
    cluster.read_leases(&store);
    crate::cluster::relay::connect(&cluster, store.clone(), &registry);
    let dispatcher = Arc::new(
        Dispatcher::new(
            store.clone(),
            registry.clone(),
            hub.clone(),
            config.lost_grace,
        )
        .context("load unfinished deployments")?,
    );
    dispatcher.join(cluster.clone());
    let http = crate::http::bind(&config.http, &dir).await?;
    let metrics_bound = crate::metrics::listen::bind(&config.metrics).await?;
    let context = Arc::new(Context {
        store: store.clone(),
        authority,
        registry,
        hub,
        blobs,
        dispatcher: dispatcher.clone(),
        tasks: TaskTracker::new(),
        shutdown: shutdown.clone(),
        ca_pem: ca_pem.clone(),
        heartbeat_secs: HEARTBEAT_SECS,
        triggers: (config.trigger_limit > 0)
            .then(|| crate::limit::RateLimit::new(config.trigger_limit, Duration::from_secs(60))),
        web: crate::ops::sessions::Web::new(
            config.http.session_ttl,
            config
                .http
                .public_url
                .clone()
                .or_else(|| http.as_ref().map(|bound| bound.url())),
        ),
        secret_key,
        approval_ttl: config.approval_ttl,
        metrics,
        cluster,
    });
    let listening = Listening {
        grpc: local,
        http: http.as_ref().map(|bound| (bound.local, bound.url())),
        metrics: metrics_bound.as_ref().map(|bound| bound.local),
    };
    on_listening(&listening);
    info!(address = %local, "controller listening");

    if let Some(heard) = heard {
        context.tasks.spawn(crate::cluster::run(
            context.clone(),
            heard,
            shutdown.clone(),
        ));
    }
    context.tasks.spawn(crate::sweepers::watch_store(
        store.clone(),
        listening,
        shutdown.clone(),
    ));
    let (once_lost, mut once_lost_rx) = tokio::sync::oneshot::channel();
    context
        .tasks
        .spawn(once_per_store(context.clone(), config.clone(), once_lost));
    dispatcher.kick_all().await;
    if let Some(http) = http {
        let router = crate::http::router(context.clone());
        crate::http::spawn(http, router, &context.tasks, shutdown.clone());
    }
    if let Some(bound) = metrics_bound {
        let metrics = context.metrics.clone();
        crate::metrics::listen::spawn(bound, metrics, &context.tasks, shutdown.clone());
    }

    let agent_auth = authenticate(store.clone(), PrincipalKind::Agent);
    let cli_auth = authenticate(store.clone(), PrincipalKind::User);
    let agent = AgentServer::new(AgentApi::new(context.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let cli = CliServer::new(CliApi::new(context.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let enroll = EnrollServer::new(EnrollApi::new(context.clone(), config.join_failure_limit))
        .max_decoding_message_size(64 * 1024)
        .max_encoding_message_size(64 * 1024);
    // The listener does TCP and TLS (caps, deadlines, accept backoff);
    // tonic serves HTTP/2 on what it admits. Keepalive pings close a
    // connection whose peer stopped answering; a peer may not leave more
    // than a few reset streams for the server to accept.
    let incoming = crate::listener::incoming(
        listener,
        tls,
        &config.connections,
        &context.tasks,
        shutdown.clone(),
    );
    let serve = Server::builder()
        .layer(crate::metrics::grpc::GrpcLayer {
            metrics: context.metrics.clone(),
        })
        .http2_keepalive_interval(Some(Duration::from_secs(15)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .http2_max_pending_accept_reset_streams(Some(20))
        .add_service(enroll)
        .add_service(InterceptedService::new(agent, agent_auth))
        .add_service(InterceptedService::new(cli, cli_auth))
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    tokio::pin!(serve);
    // Long-lived streams can keep a graceful shutdown waiting; give them a
    // few seconds after the cancel, then stop regardless.
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let result = tokio::select! {
        result = &mut serve => result.context("serve gRPC"),
        () = grace => Ok(()),
        reason = lost(&mut membership) => {
            shutdown.cancel();
            error!(reason = %reason, "lost this controller's session on the store; stopping, since the other controllers now count its agents as gone");
            Err(anyhow::anyhow!(
                "lost this controller's session on the PostgreSQL store ({reason}); the other controllers now count its agents as gone, so it stopped; start it again"
            ))
        }
        Ok(reason) = &mut once_lost_rx => {
            shutdown.cancel();
            error!(reason = %reason, "lost the lock of the once-per-store work; stopping, since another controller may run it now");
            Err(anyhow::anyhow!(
                "lost the PostgreSQL store's lock of the once-per-store work ({reason}); another controller may run it now, so this one stopped; start it again"
            ))
        }
    };
    context.tasks.close();
    if tokio::time::timeout(Duration::from_secs(5), context.tasks.wait())
        .await
        .is_err()
    {
        warn!("background tasks did not finish within 5s of shutdown");
    }
    store.flush().await.context("flush the store at shutdown")?;
    info!("controller stopped");
    result
}

/// This machine's name (`init`'s default server name, the serving
/// record's host); `None` when it cannot be read.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
}
