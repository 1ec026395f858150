//! Identifier newtypes. Deployment, task and agent ids are ULIDs, so their
//! byte form sorts by creation time (the store's primary keys rely on that).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Ulid);

        impl $name {
            /// A new id for the current time.
            pub fn new() -> Self {
                Self(Ulid::new())
            }

            /// The id as 16 big-endian bytes (sorts by time).
            pub fn to_bytes(self) -> [u8; 16] {
                self.0.to_bytes()
            }

            /// The greatest id of millisecond `ms` since the epoch: every id
            /// made up to then sorts at or before it, every later one after.
            pub fn last_of(ms: u64) -> Self {
                Self(Ulid::from_parts(ms, (1u128 << 80) - 1))
            }

            /// The id from its 16-byte form.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Ulid::from_bytes(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ulid::from_string(text.trim()).map(Self).map_err(|_| {
                    format!(
                        concat!("`{}` is not a valid ", $what, " id (26 characters such as 01JD5ZQ4W0R8S1T2V3X4Y5Z6A7)"),
                        text
                    )
                })
            }
        }
    };
}

ulid_id!(
    /// Identifies one deployment.
    DeploymentId,
    "deployment"
);
ulid_id!(
    /// Identifies one per-host task of a deployment.
    TaskId,
    "task"
);
ulid_id!(
    /// Identifies an enrolled agent; it never changes, unlike its name.
    AgentId,
    "agent"
);
ulid_id!(
    /// Identifies a CLI user.
    UserId,
    "user"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let id = DeploymentId::new();
        assert_eq!(id.to_string().parse::<DeploymentId>(), Ok(id));
        assert_eq!(DeploymentId::from_bytes(id.to_bytes()), id);
        let err = "nope".parse::<DeploymentId>().expect_err("not an id");
        assert!(err.contains("not a valid deployment id"), "{err}");
    }
}
