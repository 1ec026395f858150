//! The single mapping from errors to gRPC statuses. The status code is the
//! signal the CLI turns into its exit code; the `berth-error-code` metadata
//! carries the application layer's stable machine code; the message is for
//! people.

use berth_proto::{ERROR_CODE_METADATA, OFFLINE_AGENTS_METADATA};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::blob::BlobError;
use crate::ops::{Error, Kind};
use crate::store::StoreError;

/// The gRPC code of each kind of error.
pub fn code_of(kind: Kind) -> Code {
    match kind {
        Kind::Invalid => Code::InvalidArgument,
        Kind::NotFound => Code::NotFound,
        Kind::Conflict => Code::AlreadyExists,
        Kind::Precondition => Code::FailedPrecondition,
        Kind::Exhausted => Code::ResourceExhausted,
        Kind::Unauthenticated => Code::Unauthenticated,
        Kind::PermissionDenied => Code::PermissionDenied,
        Kind::Unavailable => Code::Unavailable,
        Kind::Aborted => Code::Aborted,
        Kind::Internal => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let mut status = Status::new(code_of(err.kind()), err.message);
        let metadata = status.metadata_mut();
        metadata.insert(
            ERROR_CODE_METADATA,
            MetadataValue::from_static(err.code.as_str()),
        );
        // Agent names are label-checked ASCII, so this always parses.
        if !err.offline_agents.is_empty()
            && let Ok(value) = MetadataValue::try_from(err.offline_agents.join(","))
        {
            metadata.insert(OFFLINE_AGENTS_METADATA, value);
        }
        status
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Status {
        Error::from(err).into()
    }
}

impl From<BlobError> for Status {
    fn from(err: BlobError) -> Status {
        Error::from(err).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Code as ErrorCode;

    #[test]
    fn the_machine_code_and_offline_agents_travel_in_metadata() {
        let mut err = Error::new(ErrorCode::AgentOffline, "agents are offline: web-2");
        err.offline_agents = vec!["web-2".into(), "web-3".into()];
        let status = Status::from(err);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "agents are offline: web-2");
        let metadata = status.metadata();
        assert_eq!(
            metadata
                .get(ERROR_CODE_METADATA)
                .and_then(|v| v.to_str().ok()),
            Some("agent/offline")
        );
        assert_eq!(
            metadata
                .get(OFFLINE_AGENTS_METADATA)
                .and_then(|v| v.to_str().ok()),
            Some("web-2,web-3")
        );
    }

    #[test]
    fn every_code_maps_to_a_status_and_carries_its_name() {
        for code in ErrorCode::ALL {
            let status = Status::from(Error::new(*code, "x"));
            assert_eq!(status.code(), code_of(code.kind()));
            let sent = status.metadata().get(ERROR_CODE_METADATA);
            assert_eq!(sent.and_then(|v| v.to_str().ok()), Some(code.as_str()));
        }
    }
}
