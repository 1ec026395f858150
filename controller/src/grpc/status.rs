//! The single mapping from internal errors to gRPC statuses. The status code
//! is the signal peers match on (the CLI turns it into its exit code); the
//! message is for people.

use tonic::Status;
use tracing::error;

use crate::blob::BlobError;
use crate::store::StoreError;

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Status {
        match err {
            StoreError::NotFound(what) => Status::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => Status::already_exists(message),
            StoreError::Refused(message) => Status::permission_denied(message),
            // Refused, not failed: nothing was acknowledged, and the same
            // call succeeds once the disk has room again.
            full @ StoreError::DiskFull(_) => {
                error!(error = %full, "store full");
                Status::resource_exhausted(full.to_string())
            }
            StoreError::Reopening => Status::unavailable(StoreError::Reopening.to_string()),
            internal => {
                error!(error = %internal, "store failure");
                Status::unavailable(format!("the controller's store failed: {internal}"))
            }
        }
    }
}

impl From<BlobError> for Status {
    fn from(err: BlobError) -> Status {
        match err {
            BlobError::Io(io) if crate::store::is_disk_full(&io) => {
                error!(error = %io, "blob store full");
                Status::resource_exhausted(format!(
                    "the controller's blob store cannot be written: {io}; free disk space on the controller's data directory and send it again"
                ))
            }
            BlobError::Io(io) => {
                error!(error = %io, "blob store failure");
                Status::unavailable(format!("the controller's blob store failed: {io}"))
            }
            BlobError::TooLarge(_) => Status::resource_exhausted(err.to_string()),
            other => Status::invalid_argument(other.to_string()),
        }
    }
}

/// Serializes a record as the JSON the CLI prints.
pub fn json<T: serde::Serialize>(value: &T) -> Result<String, Status> {
    serde_json::to_string(value).map_err(|err| Status::internal(format!("encode reply: {err}")))
}
