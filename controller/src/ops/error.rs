//! The one error of the application layer. Each carries a stable machine
//! [`Code`] (what scripts and the HTTP API match on) and the message for
//! people, which names the thing, the reason and the fix. Transports map
//! the code's [`Kind`] once each (`grpc/status.rs` for gRPC); nothing
//! else decides how an error travels.

use std::fmt;
use std::time::Duration;

use tracing::error;

use crate::blob::BlobError;
use crate::store::{StoreError, Thing};

/// What sort of failure an error is, for transports to map: a gRPC code,
/// an HTTP status, a CLI exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or out of bounds; fix it and send again.
    Invalid,
    NotFound,
    /// The thing is in a state that does not allow this now.
    Conflict,
    /// Something outside the request must change first (agents, disk).
    Precondition,
    /// Too many requests or too much data; try again later or send less.
    Exhausted,
    Unauthenticated,
    PermissionDenied,
    /// The controller cannot serve it now; the same call may work later.
    Unavailable,
    /// Cut off by something that happened meanwhile; retry.
    Aborted,
    /// A bug or a corrupt store.
    Internal,
}

macro_rules! codes {
    ($($variant:ident = $text:literal, $kind:ident;)*) => {
        /// A stable machine code: `thing/reason`. Never renamed once
        /// released; new ones are added.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code { $($variant,)* }

        impl Code {
            /// Every code, for documentation and tests.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }

            pub fn kind(self) -> Kind {
                match self { $(Code::$variant => Kind::$kind,)* }
            }
        }
    };
}

codes! {
    RequestInvalid = "request/invalid", Invalid;
    RequestTooLarge = "request/too-large", Exhausted;
    RequestNotFound = "request/not-found", NotFound;
    RequestMethodNotAllowed = "request/method-not-allowed", Invalid;
    RequestLengthRequired = "request/length-required", Invalid;
    RequestUnsupportedMediaType = "request/unsupported-media-type", Invalid;
    RequestTooManyStreams = "request/too-many-streams", Exhausted;
    RequestTimedOut = "request/timed-out", Unavailable;
    DeploymentNotFound = "deployment/not-found", NotFound;
    DeploymentAlreadyRunning = "deployment/already-running", Conflict;
    DeploymentInvalidState = "deployment/invalid-state", Conflict;
    DeploymentRateLimited = "deployment/rate-limited", Exhausted;
    DeploymentInvalidManifest = "deployment/invalid-manifest", Invalid;
    DeploymentIdempotencyConflict = "deployment/idempotency-conflict", Conflict;
    DeploymentBlobMissing = "deployment/blob-missing", Precondition;
    DeploymentNoRollbackTarget = "deployment/no-rollback-target", Precondition;
    AppNotFound = "app/not-found", NotFound;
    AppAmbiguousEnvironment = "app/ambiguous-environment", Invalid;
    AppAlreadyRunning = "app/already-running", Conflict;
    RatingInvalid = "rating/invalid", Invalid;
    MetricsInvalidWindow = "metrics/invalid-window", Invalid;
    EnvironmentNotFound = "environment/not-found", NotFound;
    EnvironmentExists = "environment/exists", Conflict;
    EnvironmentOutsideWindow = "environment/outside-window", Precondition;
    ApprovalNotPending = "approval/not-pending", Conflict;
    ApprovalAlreadyPending = "approval/already-pending", Conflict;
    ApprovalSelf = "approval/self", PermissionDenied;
    ApprovalForbidden = "approval/forbidden", PermissionDenied;
    ApprovalRequired = "approval/required", PermissionDenied;
    DomainTaken = "domain/taken", Conflict;
    TargetNoMatch = "target/no-match", Precondition;
    TargetUnknownHost = "target/unknown-host", Precondition;
    AgentOffline = "agent/offline", Precondition;
    AgentNoDocker = "agent/no-docker", Precondition;
    AgentNotFound = "agent/not-found", NotFound;
    AgentProtocolMismatch = "agent/protocol-mismatch", Precondition;
    AgentJoinRateLimited = "agent/join-rate-limited", Exhausted;
    AgentNoHello = "agent/no-hello", Invalid;
    AgentConnectionReplaced = "agent/connection-replaced", Aborted;
    BuildNoAgent = "build/no-agent", Precondition;
    HostNotFound = "host/not-found", NotFound;
    TaskNotFound = "task/not-found", NotFound;
    JobNotFound = "job/not-found", NotFound;
    TokenNotFound = "token/not-found", NotFound;
    TokenInvalid = "token/invalid", PermissionDenied;
    RegistryNotFound = "registry/not-found", NotFound;
    SecretNotFound = "secret/not-found", NotFound;
    SecretInvalid = "secret/invalid", Invalid;
    SecretVersionGone = "secret/version-gone", Precondition;
    SecretUnreadable = "secret/unreadable", Internal;
    WebhookNotFound = "webhook/not-found", NotFound;
    WebhookInvalid = "webhook/invalid", Invalid;
    HookNotFound = "hook/not-found", NotFound;
    HookInvalid = "hook/invalid", Invalid;
    HookSignature = "hook/signature", Unauthenticated;
    HookReplayed = "hook/replayed", Conflict;
    ResourceConfirm = "resource/confirm", Invalid;
    ResourceInUse = "resource/in-use", Conflict;
    ResourceNotFound = "resource/not-found", NotFound;
    ResourceRestoreFailed = "resource/restore-failed", Precondition;
    SnapshotNotFound = "snapshot/not-found", NotFound;
    UserNotFound = "user/not-found", NotFound;
    UserExists = "user/exists", Conflict;
    UserLastAdmin = "user/last-admin", Conflict;
    ApiTokenNotFound = "api-token/not-found", NotFound;
    AuthUnauthenticated = "auth/unauthenticated", Unauthenticated;
    AuthPermissionDenied = "auth/permission-denied", PermissionDenied;
    AuthRevoked = "auth/revoked", PermissionDenied;
    AuthDisabled = "auth/disabled", PermissionDenied;
    AuthLoginFailed = "auth/login-failed", Unauthenticated;
    AuthLoginRateLimited = "auth/login-rate-limited", Exhausted;
    AuthSessionEnded = "auth/session-ended", Unauthenticated;
    AuthCsrfFailed = "auth/csrf-failed", PermissionDenied;
    AuthSetupLinkInvalid = "auth/setup-link-invalid", Unauthenticated;
    HttpOff = "http/off", Precondition;
    BlobInvalid = "blob/invalid", Invalid;
    BlobNotFound = "blob/not-found", NotFound;
    BlobTooLarge = "blob/too-large", Exhausted;
    BlobUnwritable = "blob/unwritable", Exhausted;
    StoreUnwritable = "store/unwritable", Exhausted;
    StoreReopening = "store/reopening", Unavailable;
    StoreFailed = "store/failed", Unavailable;
    ControllerShuttingDown = "controller/shutting-down", Unavailable;
    Internal = "internal", Internal;
}

/// An application-layer error: a code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// With [`Code::AgentOffline`]: the agents that are offline, so a
    /// client can wait for exactly them (`berth deploy --wait-for-agents`).
    pub offline_agents: Vec<String>,
    /// With a rate limit ([`Code::DeploymentRateLimited`]): when the same
    /// request may succeed (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            offline_agents: Vec::new(),
            retry_after: None,
        }
    }

    /// A malformed or out-of-bounds request ([`Code::RequestInvalid`]).
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Code::RequestInvalid, message)
    }

    /// The controller is stopping; the caller may send the same again.
    pub fn shutting_down(what: &str) -> Error {
        Error::new(
            Code::ControllerShuttingDown,
            format!("the controller is shutting down; {what} again"),
        )
    }

    pub fn kind(&self) -> Kind {
        self.code.kind()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        let code = match &err {
            StoreError::NotFound(thing, _) => match thing {
                Thing::Deployment => Code::DeploymentNotFound,
                Thing::Agent => Code::AgentNotFound,
                Thing::Job => Code::JobNotFound,
                Thing::Task => Code::TaskNotFound,
                Thing::Token => Code::TokenNotFound,
                Thing::User => Code::UserNotFound,
                Thing::Environment => Code::EnvironmentNotFound,
                Thing::Webhook => Code::WebhookNotFound,
                Thing::Hook => Code::HookNotFound,
            },
            StoreError::Busy(_) => Code::DeploymentAlreadyRunning,
            StoreError::Conflict(_) => Code::DeploymentInvalidState,
            StoreError::Refused(_) => Code::TokenInvalid,
            // Refused, not failed: nothing was acknowledged, and the same
            // call succeeds once the disk has room again.
            StoreError::DiskFull(_) => {
                error!(error = %err, "store full");
                Code::StoreUnwritable
            }
            StoreError::Reopening => Code::StoreReopening,
            StoreError::Unsealed(_) => {
                error!(error = %err, "a sealed value did not open");
                return Error::new(
                    Code::SecretUnreadable,
                    format!(
                        "{err}; the store or the key file keys/secrets.key is damaged or from another controller: restore both from one backup of the data directory"
                    ),
                );
            }
            StoreError::Sled(_) | StoreError::Database(_) | StoreError::Corrupt { .. } => {
                error!(error = %err, "store failure");
                return Error::new(
                    Code::StoreFailed,
                    format!("the controller's store failed: {err}"),
                );
            }
        };
        Error::new(code, err.to_string())
    }
}

impl From<BlobError> for Error {
    fn from(err: BlobError) -> Error {
        match err {
            BlobError::Io(io) if crate::store::is_disk_full(&io) => {
                error!(error = %io, "blob store full");
                Error::new(
                    Code::BlobUnwritable,
                    format!(
                        "the controller's blob store cannot be written: {io}; free disk space on the controller's data directory and send it again"
                    ),
                )
            }
            BlobError::Io(io) => {
                error!(error = %io, "blob store failure");
                Error::new(
                    Code::StoreFailed,
                    format!("the controller's blob store failed: {io}"),
                )
            }
            BlobError::TooLarge(_) => Error::new(Code::BlobTooLarge, err.to_string()),
            other => Error::new(Code::BlobInvalid, other.to_string()),
        }
    }
}

impl From<berth_shared::manifest::ManifestError> for Error {
    fn from(err: berth_shared::manifest::ManifestError) -> Error {
        Error::new(Code::DeploymentInvalidManifest, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_shaped_thing_slash_reason() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            let shaped = text == "internal"
                || text.split_once('/').is_some_and(|(thing, reason)| {
                    [thing, reason].iter().all(|part| {
                        !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    })
                });
            assert!(shaped, "{text} is not thing/reason in lowercase");
        }
    }

    /// `docs/errors.md` lists exactly the codes there are.
    #[test]
    fn every_code_is_documented_and_every_documented_code_exists() {
        let docs = include_str!("../../../docs/errors.md");
        let documented: Vec<&str> = docs
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        let codes: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(documented, codes, "docs/errors.md and Code::ALL differ");
    }

    #[test]
    fn store_errors_keep_their_thing_and_message() {
        let err: Error = StoreError::NotFound(Thing::Deployment, "deployment 01X".into()).into();
        assert_eq!(err.code, Code::DeploymentNotFound);
        assert_eq!(err.message, "deployment 01X not found");
        let err: Error = StoreError::NotFound(Thing::Agent, "agent `web-1`".into()).into();
        assert_eq!(err.code, Code::AgentNotFound);
        let err: Error = StoreError::Busy("deployment 01X of web in prod is running".into()).into();
        assert_eq!(err.code, Code::DeploymentAlreadyRunning);
        assert_eq!(err.kind(), Kind::Conflict);
        let err: Error = StoreError::DiskFull("No space left on device".into()).into();
        assert_eq!(err.code, Code::StoreUnwritable);
        assert!(err.message.contains("free disk space"), "{}", err.message);
        let err: Error = StoreError::Reopening.into();
        assert_eq!(err.kind(), Kind::Unavailable);
    }
}
