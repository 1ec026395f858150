//! berth's wire protocol (`berth.v1`): the generated tonic/prost code for the
//! `Enroll`, `Agent` and `Cli` services, plus the protocol constants both ends
//! agree on. No business logic lives here; this crate depends on nothing of
//! berth's but is used by the controller, the agent and the tests.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("berth.v1");
}

/// The path of every method of every service (`/berth.v1.Cli/CreateDeployment`), as
/// `proto/berth.proto` declares them.
pub const METHOD_PATHS: &[&str] = include!(concat!(env!("OUT_DIR"), "/method_paths.rs"));

/// A request that sets a secret shows its scope, its name and the length
/// of its value, never the value, wherever it is formatted (a log line, a
/// panic, a test's failure).
impl std::fmt::Debug for v1::SetSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSecretRequest")
            .field("scope", &self.scope)
            .field("name", &self.name)
            .field("value_bytes", &self.value.len())
            .finish()
    }
}

/// A secret's value as an assignment carries it: its name, file and
/// version show, its value never does.
impl std::fmt::Debug for v1::SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("version", &self.version)
            .field("file", &self.file)
            .field("value_bytes", &self.value.len())
            .finish()
    }
}

/// A webhook to add: its URL may carry a token, so only its length shows.
impl std::fmt::Debug for v1::AddWebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddWebhookRequest")
            .field("url_bytes", &self.url.len())
            .field("events", &self.events)
            .field("app", &self.app)
            .field("environment", &self.environment)
            .field("format", &self.format)
            .finish()
    }
}

/// The answer to AddWebhook: the endpoint shows, its secret does not.
impl std::fmt::Debug for v1::CreatedWebhookReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedWebhookReply")
            .field("webhook", &self.webhook)
            .field("secret_bytes", &self.secret.len())
            .finish()
    }
}

/// The answer to AddHook: the hook shows, its secret does not.
impl std::fmt::Debug for v1::CreatedHookReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedHookReply")
            .field("hook", &self.hook)
            .field("url", &self.url)
            .field("secret_bytes", &self.secret.len())
            .finish()
    }
}

/// A git fetch: where and what, never its credential.
impl std::fmt::Debug for v1::FetchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchRequest")
            .field("request_id", &self.request_id)
            .field("url", &self.url)
            .field("commit", &self.commit)
            .field("path", &self.path)
            .field("token_bytes", &self.token.len())
            .field("ssh_key_bytes", &self.ssh_key.len())
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl v1::task_event::Kind {
    /// The free text of an event (a log line, a stage's or task's error
    /// and evidence), for masking the secrets it may hold.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        use v1::task_event::Kind;
        match self {
            Kind::Log(log) => vec![&mut log.line],
            Kind::StageStarted(_) => Vec::new(),
            Kind::StageFinished(finished) => std::iter::once(&mut finished.error)
                .chain(finished.details.values_mut())
                .collect(),
            Kind::Finished(finished) => vec![&mut finished.error],
        }
    }
}

/// The protocol version this build speaks. The controller accepts agents
/// whose version is in [`MIN_PROTOCOL_VERSION`, `PROTOCOL_VERSION`].
///
/// Version 2 replaced the agent messages' string outcomes, statuses and
/// streams with enums and `int32 exit_code` + `bool has_exit_code` with
/// `optional int32 exit_code`, on new field numbers (see `berth.proto`).
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest agent protocol version this build can serve. Version 1
/// agents send their outcomes in fields version 2 no longer reads, so they
/// are refused (`install a matching berth-agent`), never half understood.
pub const MIN_PROTOCOL_VERSION: u32 = 2;

/// Largest gRPC message either side accepts or sends (bytes).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Size of one blob chunk on the wire (bytes).
pub const BLOB_CHUNK_BYTES: usize = 1024 * 1024;
/// The DNS name in the controller's server certificate that agents and the
/// CLI verify, whatever address they dial.
pub const CONTROLLER_TLS_NAME: &str = "controller.berth.internal";

/// How far an agent's clock may be from the controller's (Unix ms) before
/// the controller refuses to renew its certificate and the agent warns.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Longest `CreateDeploymentRequest.wait_for_agents_ms` the controller
/// accepts (`berth deploy --wait-for-agents`): one hour.
pub const MAX_WAIT_FOR_AGENTS: std::time::Duration = std::time::Duration::from_secs(3600);
/// Metadata key on a deploy refused because agents the target selects are
/// offline: their names, comma-separated. `berth deploy --wait-for-agents`
/// matches on it (the message is for people).
pub const OFFLINE_AGENTS_METADATA: &str = "berth-offline-agents";
/// Metadata key on a `CreateDeployment` reply that returns the deployment an
/// earlier request with the same idempotency key made (value `1`), so the
/// CLI says "already created" instead of "created".
pub const EXISTING_DEPLOYMENT_METADATA: &str = "berth-existing-deployment";
/// Metadata key on every error status the `Cli` service returns: the
/// stable machine code of the error (`deployment/not-found`, ...), which
/// scripts match on (`berth -o json` prints it); the message is for people.
pub const ERROR_CODE_METADATA: &str = "berth-error-code";

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_request_never_shows_its_value() {
        let request = crate::v1::SetSecretRequest {
            scope: "web/prod".into(),
            name: "DB_URL".into(),
            value: "hunter2-unique".into(),
        };
        let shown = format!("{request:?} {request:#?}");
        assert!(shown.contains("DB_URL"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
