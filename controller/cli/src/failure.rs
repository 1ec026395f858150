//! A command's failure: the exit code it maps to (SPEC §6), its message,
//! and the controller's machine code; and how a gRPC status becomes one.

use berth_shared::exit;
use tonic::Code;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// The connection broke during the call: a refused credential (TLS 1.3
    /// checks it only after the request went out) or a controller that
    /// went away; [`crate::run`] asks again to tell which.
    pub broken: bool,
    /// The controller's machine code for the error (`deployment/not-found`),
    /// when it sent one.
    pub error_code: Option<String>,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            broken: false,
            error_code: None,
        }
    }

    /// The stable machine code `-o json` prints: the controller's, or for
    /// failures found on this side one named after the exit code.
    pub fn machine_code(&self) -> String {
        if let Some(code) = &self.error_code {
            return code.clone();
        }
        if self.broken {
            return "controller/connection-broken".into();
        }
        match self.code {
            exit::USAGE => "cli/usage",
            exit::AUTH => "auth/refused",
            exit::NOT_FOUND => "cli/not-found",
            exit::CONFLICT => "cli/conflict",
            _ => "cli/failed",
        }
        .into()
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(exit::USAGE, message)
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Failure {
        let tls_refused =
            status.code() == Code::Unknown && error_chain(&status).contains("received fatal alert");
        if tls_refused {
            let chain = error_chain(&status);
            let alert = chain.rsplit(": ").next().unwrap_or_default();
            return Failure::new(
                exit::AUTH,
                format!(
                    "the controller refused this credential at the TLS handshake (alert {alert}); it was not issued by this controller's CA, or it expired"
                ),
            );
        }
        // In TLS 1.3 the server checks the client certificate after the
        // client already sent its request, so a refused credential often
        // shows up only as a broken connection.
        let broken = matches!(status.code(), Code::Unknown | Code::Cancelled)
            && ["transport error", "operation was canceled"].contains(&status.message());
        if broken {
            return Failure {
                broken: true,
                ..Failure::new(
                    exit::AUTH,
                    format!(
                        "the controller closed the connection ({}); this usually means it does not accept this credential (not issued by its CA, or expired)",
                        status.message()
                    ),
                )
            };
        }
        // A stream cut in the middle: the controller went away (or the
        // network did), which a credential problem never causes.
        let cut = [
            "h2 protocol error",
            "error reading a body",
            "connection reset",
        ]
        .iter()
        .any(|text| status.message().contains(text));
        if cut {
            return Failure {
                broken: true,
                ..Failure::new(
                    exit::FAILED,
                    format!(
                        "the connection to the controller broke during the call ({})",
                        status.message()
                    ),
                )
            };
        }
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => exit::USAGE,
            Code::Unauthenticated | Code::PermissionDenied => exit::AUTH,
            Code::NotFound => exit::NOT_FOUND,
            // ResourceExhausted: a rate limit; try again later.
            Code::AlreadyExists | Code::Aborted | Code::ResourceExhausted => exit::CONFLICT,
            _ => exit::FAILED,
        };
        let message = match status.code() {
            Code::Unavailable
                if status.message().contains("transport")
                    || status.message().contains("connect") =>
            {
                format!(
                    "cannot reach the controller: {}; is it running, and is the address right?",
                    status.message()
                )
            }
            _ => status.message().to_string(),
        };
        let error_code = status
            .metadata()
            .get(berth_proto::ERROR_CODE_METADATA)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        Failure {
            code,
            message,
            broken: false,
            error_code,
        }
    }
}

/// An error with its sources, `outer: inner: ...`.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
