//! Requests into the operations' plain types (from a JSON body's
//! [`Fields`] or a query's [`Params`]), and the replies that are more than
//! one record. The counterpart of `grpc/cli/codec.rs`.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use berth_shared::record::Deployment;

use super::decode::Fields;
use super::query::Params;
use super::reply;
use crate::ops::create::{CreatedDeployment, NewDeployment};
use crate::ops::deployments::{DEFAULT_LIST_LIMIT, ListRequest, MAX_LIST_LIMIT};
use crate::ops::provenance::{Provenance, Trigger};
use crate::ops::rerun::{Claim, Rollback};
use crate::ops::stop::AppRef;
use crate::ops::{self, Error};

/// The response header saying a create returned the deployment an earlier
/// request with the same idempotency key made.
pub const EXISTING_DEPLOYMENT_HEADER: &str = "berth-existing-deployment";

fn missing(name: &str) -> Error {
    Error::invalid(format!("field `{name}` is missing"))
}

/// Why and from what, as a create names it (checked by the operation).
fn provenance(body: &mut Fields) -> Result<Provenance, Error> {
    Ok(Provenance {
        message: body.string("message")?,
        source_ref: body.string("source_ref")?,
        commit_sha: body.string("commit_sha")?,
        commit_time: commit_time(body.string("commit_time")?)?,
        commit_author: None,
        build_url: body.string("build_url")?,
    })
}

/// An RFC 3339 commit time.
fn commit_time(text: Option<String>) -> Result<Option<berth_shared::record::Timestamp>, Error> {
    text.map(|text| {
        berth_shared::time::parse_rfc3339(text.trim())
            .map(|time| berth_shared::record::Timestamp(berth_shared::time::unix_ms(time)))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "field `commit_time`: `{}` is not an RFC 3339 time like 2026-05-01T12:00:00Z",
                    berth_shared::text::clip(&text, 80)
                ))
            })
    })
    .transpose()
}

/// `POST /api/v1/deployment-events`: a deployment another tool made.
/// `product_name` is accepted for `app`, `scm_sha` and `scm_branch` for
/// the commit and branch (the names other tools' deployment events use).
pub fn external_event(mut body: Fields) -> Result<ops::external::ExternalEvent, Error> {
    let app = match (body.string("app")?, body.string("product_name")?) {
        (Some(app), _) | (None, Some(app)) => app,
        (None, None) => return Err(missing("app")),
    };
    let status = ops::external::ExternalStatus::parse(&body.required_string("status")?)?;
    let event = ops::external::ExternalEvent {
        app,
        version: body.required_string("version")?,
        environment: body.string("environment")?.unwrap_or_default(),
        status,
        deployed_by: body.string("deployed_by")?,
        provenance: Provenance {
            message: body.string("message")?,
            source_ref: body.string("scm_branch")?,
            commit_sha: body.string("scm_sha")?,
            commit_time: None,
            commit_author: None,
            build_url: body.string("build_url")?,
        },
        extra_metadata: body.string_map("extra_metadata")?,
    };
    body.finish()?;
    Ok(event)
}

/// `POST /api/v1/deployments`.
pub fn new_deployment(mut body: Fields) -> Result<NewDeployment, Error> {
    let manifest_toml = body.required_string("manifest")?;
    let bundle_digest = body.required_string("bundle_digest")?;
    let bundle_size = body
        .u64("bundle_size")?
        .ok_or_else(|| missing("bundle_size"))?;
    let image_archive = match (
        body.string("image_archive_digest")?,
        body.u64("image_archive_size")?,
    ) {
        (None, None) => None,
        (Some(digest), Some(size)) => Some((digest, size)),
        _ => {
            return Err(Error::invalid(
                "fields `image_archive_digest` and `image_archive_size` go together",
            ));
        }
    };
    let new = NewDeployment {
        manifest_toml,
        bundle_digest,
        bundle_size,
        image_archive,
        environment: body.string("environment")?.unwrap_or_default(),
        version: body.string("version")?.unwrap_or_default(),
        idempotency_key: body.string("idempotency_key")?.unwrap_or_default(),
        force: body.flag("force")?,
        queue: body.flag("queue")?,
        rebuild: body.flag("rebuild")?,
        wait_for_agents: Duration::from_secs(body.u64("wait_for_agents_secs")?.unwrap_or(0)),
        provenance: provenance(&mut body)?,
        trigger: Trigger::Api,
    };
    body.finish()?;
    Ok(new)
}

/// The reply to a create: 201 with the new deployment, or 200 with
/// [`EXISTING_DEPLOYMENT_HEADER`] when the idempotency key named one.
pub fn created(created: CreatedDeployment) -> Response {
    if created.existing {
        let mut response = reply::ok(&created.deployment);
        response
            .headers_mut()
            .insert(EXISTING_DEPLOYMENT_HEADER, HeaderValue::from_static("true"));
        response
    } else {
        reply::json(StatusCode::CREATED, &created.deployment)
    }
}

/// `GET /api/v1/deployments`: filters, sort and page (`triggered_by=me`
/// is the operation's to resolve).
pub fn list_request(mut params: Params) -> Result<ListRequest, Error> {
    let ascending = match params.one("order")?.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(Error::invalid(format!(
                "parameter `order`: expected asc or desc, got `{}`",
                berth_shared::text::clip(other, 40)
            )));
        }
    };
    let limit = params.number("limit", u64::from(MAX_LIST_LIMIT))?;
    let request = ListRequest {
        app: params.one("app")?.unwrap_or_default(),
        environment: params.one("environment")?.unwrap_or_default(),
        statuses: params.all("status"),
        limit: limit.map_or(DEFAULT_LIST_LIMIT, |limit| limit as u32),
        triggered_by: params.one("triggered_by")?.unwrap_or_default(),
        search: params.one("search")?.unwrap_or_default(),
        sort: params.one("sort")?.unwrap_or_default(),
        ascending,
        offset: params.number("offset", u64::from(u32::MAX))?.unwrap_or(0) as u32,
        until: params
            .one("until")?
            .map(|id| ops::parse_deployment_id(&berth_shared::text::clip(&id, 40)))
            .transpose()?,
    };
    params.finish()?;
    Ok(request)
}

/// A page of deployments; `next_offset` is where the next page starts
/// when this one is full (the next may then be empty), else `null`.
pub fn deployment_page(deployments: Vec<Deployment>, offset: u32, limit: u32) -> Response {
    let next_offset = next_offset(deployments.len(), offset, limit);
    reply::ok(&reply::DeploymentPage {
        deployments,
        next_offset,
    })
}

fn next_offset(count: usize, offset: u32, limit: u32) -> Option<u64> {
    (limit > 0 && count >= limit as usize).then(|| u64::from(offset) + count as u64)
}

/// `{force, queue}` of a retry or redeploy (an empty body is all false).
pub fn claim(mut body: Fields) -> Result<Claim, Error> {
    let claim = Claim {
        force: body.flag("force")?,
        queue: body.flag("queue")?,
    };
    body.finish()?;
    Ok(claim)
}

/// `PUT /api/v1/apps/{app}/rating`: the stars (checked by the operation,
/// so a refusal says what a rating is).
pub fn rating(mut body: Fields) -> Result<u64, Error> {
    let stars = body.u64("stars")?.ok_or_else(|| missing("stars"))?;
    body.finish()?;
    Ok(stars)
}

/// The environment of an app route, from the query or the JSON body (not
/// both, unless they agree); empty means the app's only one.
fn environment(params: &mut Params, body: &mut Fields) -> Result<String, Error> {
    let from_query = params.one("environment")?;
    let from_body = body.string("environment")?;
    match (from_query, from_body) {
        (Some(query), Some(body)) if query != body => Err(Error::invalid(
            "the query and the body name different environments",
        )),
        (query, body) => Ok(query.or(body).unwrap_or_default()),
    }
}

/// `POST /api/v1/apps/{app}/stop|start`.
pub fn app_ref(app: String, mut params: Params, mut body: Fields) -> Result<AppRef, Error> {
    let environment = environment(&mut params, &mut body)?;
    params.finish()?;
    body.finish()?;
    Ok(AppRef { app, environment })
}

/// `POST /api/v1/apps/{app}/rollback`: `{to, force, queue}`.
pub fn rollback(app: String, mut params: Params, mut body: Fields) -> Result<Rollback, Error> {
    let environment = environment(&mut params, &mut body)?;
    let to = body
        .string("to")?
        .map(|id| ops::parse_deployment_id(&berth_shared::text::clip(&id, 40)))
        .transpose()?;
    let claim = Claim {
        force: body.flag("force")?,
        queue: body.flag("queue")?,
    };
    params.finish()?;
    body.finish()?;
    Ok(Rollback {
        app: AppRef { app, environment },
        to,
        claim,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Code;

    fn body(text: &str) -> Fields {
        Fields::parse(text.as_bytes()).expect("object")
    }

    #[test]
    fn a_create_body_becomes_a_request_and_its_mistakes_are_named() {
        let new = new_deployment(body(
            r#"{"manifest": "app = \"a\"", "bundle_digest": "sha256:00", "bundle_size": 3,
                "environment": "prod", "force": true, "wait_for_agents_secs": 30}"#,
        ))
        .expect("valid");
        assert_eq!(new.environment, "prod");
        assert!(new.force && !new.queue);
        assert_eq!(new.wait_for_agents, Duration::from_secs(30));
        assert_eq!(new.image_archive, None);
        for (text, says) in [
            (r#"{"bundle_digest": "d", "bundle_size": 1}"#, "`manifest`"),
            (
                r#"{"manifest": "m", "bundle_digest": "d"}"#,
                "`bundle_size`",
            ),
            (
                r#"{"manifest": "m", "bundle_digest": "d", "bundle_size": 1, "image_archive_size": 2}"#,
                "go together",
            ),
            (
                r#"{"manifest": "m", "bundle_digest": "d", "bundle_size": 1, "forse": true}"#,
                "unknown field `forse`",
            ),
        ] {
            let err = new_deployment(body(text)).expect_err(text);
            assert_eq!(err.code, Code::RequestInvalid);
            assert!(err.message.contains(says), "{text}: {}", err.message);
        }
    }

    /// Found by the fuzzer (tests/tests/http_fuzz.rs): `?environment=`
    /// (empty, as a form sends it) contradicted the body's environment.
    #[test]
    fn an_empty_query_environment_leaves_the_body_s() {
        let query = |text: &str| Params::parse(text).expect("query");
        let app = app_ref(
            "web".into(),
            query("environment="),
            body(r#"{"environment": "prod"}"#),
        );
        assert_eq!(app.map(|app| app.environment), Ok("prod".to_string()));
        let clash = app_ref(
            "web".into(),
            query("environment=qa"),
            body(r#"{"environment": "prod"}"#),
        );
        assert!(clash.is_err());
    }

    #[test]
    fn a_full_page_points_at_the_next() {
        assert_eq!(next_offset(2, 0, 2), Some(2));
        assert_eq!(next_offset(50, 100, 50), Some(150));
        assert_eq!(next_offset(3, 0, 50), None);
        assert_eq!(next_offset(0, 10, 50), None);
    }
}
