//! The OpenAPI 3.1 document of the HTTP API, generated from the code: the
//! handlers' `#[utoipa::path]` annotations, the schemas of the records
//! they answer with (`berth-shared`'s `openapi` feature) and of the reply
//! and request types here. Served without a credential at
//! `GET /api/v1/openapi.json` (it holds nothing secret), and checked in as
//! `docs/openapi.json` by a test that fails when the two differ.
//!
//! To add a route: annotate its handler with `#[utoipa::path]` and list it
//! in [`ApiDoc`]'s `paths`. The credentials (an API token, the web session
//! cookie) are the schemes in [`Security`], alternatives in `security(...)`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::error::ErrorReply;
use super::{
    Api, apps, blobs, deployments, environments, events, fleet, hooks, logs, people, resources,
    secrets, session, webhooks,
};

pub mod requests;
pub mod responses;
pub mod streams;

pub use responses::ErrorCode;
use responses::{
    BadRequest, Conflict, Forbidden, InsufficientStorage, Internal, LengthRequired, NotFound,
    TooLarge, TooManyRequests, Unauthorized, Unavailable, UnsupportedMediaType,
};

/// The document: every route of `http::router`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "berth HTTP API",
        version = "v1",
        description = "The HTTP/JSON API of the berth controller, for CI scripts and other programs: the operations of the `berth` CLI with the same records and roles. See docs/http-api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        fleet::whoami,
        fleet::status,
        fleet::controllers,
        fleet::agents,
        fleet::agent,
        fleet::inspect,
        fleet::audit,
        people::users,
        people::add_user,
        people::change_user,
        people::remove_user,
        people::setup_link,
        people::api_tokens,
        people::create_api_token,
        people::revoke_api_token,
        blobs::put,
        blobs::stat,
        deployments::create,
        deployments::list,
        deployments::get,
        logs::logs,
        events::deployment,
        deployments::cancel,
        deployments::approve,
        deployments::retry,
        deployments::redeploy,
        deployments::delete,
        deployments::purge,
        apps::list,
        apps::get,
        apps::rate,
        apps::clear,
        apps::dora,
        resources::snapshots,
        resources::restore,
        environments::list_all,
        environments::list,
        environments::create,
        environments::get,
        environments::change,
        environments::remove,
        deployments::stop_app,
        deployments::start_app,
        deployments::rollback,
        secrets::list,
        secrets::set,
        secrets::remove,
        secrets::set_fleet,
        secrets::remove_fleet,
        hooks::receive,
        hooks::add,
        hooks::list,
        hooks::remove,
        webhooks::add,
        webhooks::list,
        webhooks::remove,
        webhooks::enable,
        webhooks::test,
        webhooks::deliveries,
        events::all,
        deployments::external_event,
        session::login,
        session::current,
        session::logout,
        serve,
    ),
    components(schemas(ErrorReply), responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        LengthRequired,
        TooLarge,
        UnsupportedMediaType,
        TooManyRequests,
        Internal,
        Unavailable,
        InsufficientStorage,
    )),
    modifiers(&Security, &CommonErrors, &ChangeErrors, &OptionalBodies),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "deployments", description = "Deployments: create, read, follow and change"),
        (name = "apps", description = "The app catalogue and its ratings; an app in an environment: stop, start, roll back"),
        (name = "environments", description = "An app's environments as records: type, default, protection, variables"),
        (name = "blobs", description = "Bundles and image archives, uploaded before a create"),
        (name = "fleet", description = "What runs where: status, agents, the audit log"),
        (name = "people", description = "The caller, users and API tokens"),
        (name = "secrets", description = "Secrets of an app in an environment, and fleet-wide ones: set, list, remove; a value is only ever in a request"),
        (name = "hooks", description = "Git push hooks: a push of a matching ref, signed by its git host, is fetched by a build agent and deployed"),
        (name = "webhooks", description = "Outgoing webhooks (admins): endpoints, their Standard Webhooks signing secret shown once, test deliveries and the delivery log"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// The credentials a request may present.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API token (`bta_...`) from `berth api-tokens create`, acting for its user with the user's role capped by the token's `--role-cap`.",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut session = ApiKeyValue::new(super::auth::SESSION_COOKIE);
        session.description = Some(
            "The cookie of a web sign-in (`POST /api/v1/session`). A change (any method but GET and HEAD) must also send the session's `X-CSRF-Token`.".into(),
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(session)));
    }
}

/// Adds the errors every route may answer, so that routes list only their
/// own: 400 where there is input to refuse, and where a credential is
/// needed 401, 403, 500 and 503.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.head,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_errors(operation);
            }
        }
    }
}

fn add_common_errors(operation: &mut Operation) {
    let takes_input = operation.request_body.is_some()
        || operation
            .parameters
            .as_ref()
            .is_some_and(|parameters| !parameters.is_empty());
    // `security(())` on an operation means it needs no credential.
    let public = operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().all(|requirement| {
            serde_json::to_value(requirement).is_ok_and(|value| value == serde_json::json!({}))
        })
    });
    let mut statuses = Vec::new();
    if takes_input {
        statuses.push(("400", responses::name_of::<BadRequest>()));
    }
    if !public {
        statuses.extend(responses::common());
    }
    for (status, name) in statuses {
        let reference = RefOr::Ref(Ref::from_response_name(name));
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert(reference);
    }
}

/// Adds the errors every POST may answer: its JSON body too large (413)
/// or not JSON (415), and a full disk under the store it writes (507).
struct ChangeErrors;

impl Modify for ChangeErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let posts = openapi
            .paths
            .paths
            .values_mut()
            .flat_map(|item| [item.post.as_mut(), item.put.as_mut(), item.patch.as_mut()])
            .flatten();
        for operation in posts {
            for (status, name) in [
                ("413", responses::name_of::<TooLarge>()),
                ("415", responses::name_of::<UnsupportedMediaType>()),
                ("507", responses::name_of::<InsufficientStorage>()),
            ] {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert(RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
}

/// A route whose body is `Option<T>` may be sent without a body (the
/// same as `{}`); it may not be sent `null`, which is what utoipa's
/// `oneOf [null, T]` would say.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bodies = openapi
            .paths
            .paths
            .values_mut()
            .filter_map(|item| item.post.as_mut())
            .filter_map(|operation| operation.request_body.as_mut());
        for body in bodies {
            for content in body.content.values_mut() {
                let Some(RefOr::T(Schema::OneOf(one_of))) = &mut content.schema else {
                    continue;
                };
                one_of.items.retain(|item| !is_null(item));
                if let [only] = one_of.items.as_slice() {
                    content.schema = Some(only.clone());
                }
            }
        }
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(object))
        if object.schema_type == SchemaType::Type(Type::Null))
}

/// The document as pretty JSON: what `/api/v1/openapi.json` answers and
/// `docs/openapi.json` holds. It goes through a JSON value, whose keys are
/// sorted, so the order is stable whatever utoipa's.
pub fn document() -> String {
    let mut document = serde_json::to_value(ApiDoc::openapi())
        .expect("the document is maps, lists and strings, which always encode as JSON");
    allow_empty_query_values(&mut document);
    let mut text =
        serde_json::to_string_pretty(&document).expect("a JSON value always encodes as JSON");
    text.push('\n');
    text
}

/// Every query parameter may be given empty (`http/query.rs`: the same as
/// left out, or true for a flag). utoipa 5 has no `allowEmptyValue`, so it
/// is added to the JSON here.
fn allow_empty_query_values(document: &mut serde_json::Value) {
    let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let parameters = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("parameters"))
        .filter_map(serde_json::Value::as_array_mut)
        .flatten();
    for parameter in parameters {
        if parameter["in"] == "query"
            && let Some(parameter) = parameter.as_object_mut()
        {
            parameter.insert("allowEmptyValue".into(), true.into());
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn serve(State(api): State<Arc<Api>>) -> Response {
    let mut response = Response::new(axum::body::Body::from(api.document.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests;
