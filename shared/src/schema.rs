//! JSON schemas (for the controller's OpenAPI document) of the types whose
//! JSON form is written by hand rather than derived: [`Timestamp`] (an RFC
//! 3339 string), the ULID ids (26-character strings) and [`SecretScope`]
//! (`APP/ENV` or `*`). Built only with
//! the `openapi` feature; the derived records refer to these by name.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::id::{AgentId, DeploymentId, TaskId, UserId};
use crate::record::{SecretScope, Timestamp};

/// The pattern of an id as the controller writes it: a ULID in Crockford
/// base 32, uppercase, whose first character keeps it within 128 bits.
pub const ULID_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$";

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "A point in time, RFC 3339 in UTC with milliseconds (2026-10-23T02:00:00.000Z).",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {}

/// The pattern of a secret's scope: `APP/ENV` (manifest names) or `*`.
pub const SECRET_SCOPE_PATTERN: &str =
    "^([*]|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$";

impl PartialSchema for SecretScope {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(SECRET_SCOPE_PATTERN))
            .description(Some(
                "Where a secret applies: `APP/ENV` (one app in one environment, like `web/prod`) or `*` (fleet-wide).",
            ))
            .into()
    }
}

impl ToSchema for SecretScope {}

macro_rules! ulid_schema {
    ($($name:ident: $what:literal),* $(,)?) => {$(
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(ULID_PATTERN))
                    .description(Some(concat!("A ", $what, " id: a ULID, 26 characters that sort by creation time.")))
                    .into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

ulid_schema!(
    DeploymentId: "deployment",
    TaskId: "task",
    AgentId: "agent",
    UserId: "user",
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern matches every id the controller writes.
    #[test]
    fn new_ids_match_the_pattern() {
        let id = DeploymentId::new().to_string();
        assert_eq!(id.len(), 26);
        assert!(id.starts_with(|c: char| ('0'..='7').contains(&c)), "{id}");
        let allowed =
            |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c));
        assert!(id.chars().all(allowed), "{id}");
    }
}
