//! The Apps pages. `/apps`: every app with its newest deployment in each
//! environment and its rating (the average of 1 to 5 stars, one rating per
//! user, and the caller's own). `/apps/{app}`: the app's history in each
//! environment with its record and variables (`environments.rs`), and a
//! star rating the caller gives or takes back, and in each environment its
//! DORA figures (`dora.rs`). The data
//! is `ops::apps::list` and `ops::apps::get`, as for the API; the script
//! (`assets/apps.js`) sends a rating to `PUT|DELETE /api/v1/apps/{app}/rating`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_shared::record::{
    AppSummary, DeploymentBrief, EnvironmentHistory, EnvironmentView, RatingSummary, SecretScope,
    SecretView,
};
use maud::{Markup, html};

use super::auth::Browser;
use super::layout::{self, Nav};
use crate::http::Api;
use crate::ops;

/// An app's page address (its name escaped for a path).
fn href(app: &str) -> String {
    let name: String = form_urlencoded::byte_serialize(app.as_bytes()).collect();
    format!("/apps/{}", name.replace('+', "%20"))
}

/// Stars drawn for an average, said in words for screen readers.
fn stars(rating: &RatingSummary) -> Markup {
    match rating.average {
        None => html! { span class="muted" { "not rated" } },
        Some(average) => {
            let full = average.round().clamp(0.0, 5.0) as usize;
            let said = format!(
                "{average:.1} of 5 stars from {} rating{}",
                rating.count,
                if rating.count == 1 { "" } else { "s" }
            );
            html! {
                span class="stars" role="img" aria-label=(said) title=(said) {
                    span class="on" aria-hidden="true" { ("★".repeat(full)) }
                    span class="off" aria-hidden="true" { ("★".repeat(5 - full)) }
                }
                " " span class="rating-figure" { (format!("{average:.1}")) " (" (rating.count) ")" }
            }
        }
    }
}

/// `GET /apps`.
pub async fn list(State(api): State<Arc<Api>>, browser: Browser) -> Response {
    let apps = ops::apps::list(&api.context, &browser.caller).await;
    let main = html! {
        h1 { "Apps" }
        p class="muted" { "Every app berth has deployed, where it runs, and how the team rates it." }
        @match &apps {
            Err(err) => (layout::refusal(err)),
            Ok(apps) if apps.is_empty() => p class="empty" { "No app has a deployment yet." },
            Ok(apps) => div class="scroll" role="region" tabindex="0" aria-label="Apps table" { table class="stages apps" {
                thead { tr { th scope="col" { "App" } th scope="col" { "Environments" }
                    th scope="col" { "Rating" } th scope="col" { "Yours" } } }
                tbody { @for app in apps { (app_row(app)) } }
            } },
        }
    };
    layout::page("Apps", Some(&browser.session), Nav::Apps, main)
}

fn app_row(app: &AppSummary) -> Markup {
    html! {
        tr data-app=(app.app) {
            td { a href=(href(&app.app)) { strong { (app.app) } } }
            td { ul class="envs" { @for env in &app.environments {
                li { strong { (env.environment) } " " (env.latest.version) " "
                    span class=(format!("status s-{}", env.latest.status.as_str())) { (env.latest.status.as_str()) }
                    " " span class="muted" { (layout::time(env.latest.created_at)) } }
            } } }
            td { (stars(&app.rating)) }
            td { @match app.rating.my_stars { Some(mine) => { (mine) " ★" }, None => span class="muted" { "-" } } }
        }
    }
}

/// `GET /apps/{app}`.
pub async fn page(
    State(api): State<Arc<Api>>,
    browser: Browser,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let app = berth_shared::text::clip(&app, 300);
    let since = super::dora::since(query.as_deref());
    match ops::apps::get(&api.context, &browser.caller, &app).await {
        Ok(detail) => {
            let records = ops::environments::list(&api.context, &browser.caller, Some(&detail.app))
                .unwrap_or_default();
            let operator = layout::may_operate(browser.session.role);
            let record = |name: &str| records.iter().find(|record| record.name == name);
            // Names and versions only: a listing never holds a value. Each
            // environment's scope is read alone, not every secret there is.
            let secrets_of = |name: &str| -> Vec<SecretView> {
                let scope = SecretScope::App {
                    app: detail.app.clone(),
                    environment: name.to_string(),
                };
                ops::secrets::list(&api.context, &browser.caller, Some(&scope)).unwrap_or_default()
            };
            let mut dora = Vec::new();
            for env in &detail.environments {
                let request = ops::dora::DoraRequest {
                    app: detail.app.clone(),
                    environment: env.environment.clone(),
                    since: since.clone(),
                    fix_window: String::new(),
                };
                let report = ops::dora::report(&api.context, &browser.caller, &request).await;
                dora.push(super::dora::panel(&env.environment, &since, &report));
            }
            // Environments with a record but no deployment yet come last.
            let unused = records.iter().filter(|record| {
                !detail
                    .environments
                    .iter()
                    .any(|env| env.environment == record.name)
            });
            let main = html! {
                p class="crumbs" { a href="/apps" { "Apps" } " / " (detail.app) }
                h1 { (detail.app) }
                (rating_form(&detail.app, &detail.rating))
                @for (env, dora) in detail.environments.iter().zip(&dora) {
                    (history(&detail.app, env, record(&env.environment), &secrets_of(&env.environment), operator, dora))
                }
                @for record in unused {
                    section aria-labelledby=(format!("env-{}", record.name)) {
                        h2 id=(format!("env-{}", record.name)) { "In " (record.name) }
                        (super::environments::panel(&detail.app, record, &secrets_of(&record.name), operator))
                        p class="muted" { "No deployment here yet." }
                    }
                }
            };
            layout::page(&detail.app, Some(&browser.session), Nav::Apps, main)
        }
        Err(err) => {
            let main = html! {
                h1 { "No such app" }
                (layout::refusal(&err))
                p { a href="/apps" { "All apps" } }
            };
            let mut response = layout::page("Not found", Some(&browser.session), Nav::Apps, main);
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

fn rating_form(app: &str, rating: &RatingSummary) -> Markup {
    html! {
        section aria-labelledby="rating-title" class="rating" {
            h2 id="rating-title" { "Rating" }
            p id="rating-average" { (stars(rating)) }
            form id="rate" data-app=(app) {
                fieldset class="star-picker" {
                    legend { "Your rating" }
                    @for value in 1..=5u8 {
                        input type="radio" name="stars" id=(format!("stars-{value}")) value=(value)
                            checked[rating.my_stars == Some(value)];
                        label for=(format!("stars-{value}")) title=(format!("{value} of 5")) {
                            span aria-hidden="true" { "★" }
                            span class="visually-hidden" { (value) " star" @if value > 1 { "s" } }
                        }
                    }
                }
                button type="button" class="link" id="rate-clear" hidden[rating.my_stars.is_none()] { "Take my rating back" }
            }
            p class="hint" { "One rating per person; rating again replaces yours. It helps others find the apps that serve them best." }
        }
    }
}

fn history(
    app: &str,
    env: &EnvironmentHistory,
    record: Option<&EnvironmentView>,
    secrets: &[SecretView],
    operator: bool,
    dora: &Markup,
) -> Markup {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("app", app)
        .append_pair("environment", &env.environment)
        .finish();
    html! {
        section aria-labelledby=(format!("env-{}", env.environment)) {
            h2 id=(format!("env-{}", env.environment)) { "In " (env.environment) }
            @if let Some(record) = record { (super::environments::panel(app, record, secrets, operator)) }
            (dora)
            div class="scroll" role="region" tabindex="0" aria-label=(format!("Deployments of {app} in {}", env.environment)) { table class="stages" {
                thead { tr { th scope="col" { "Deployment" } th scope="col" { "Version" } th scope="col" { "Status" }
                    th scope="col" { "Created" } th scope="col" { "By" } } }
                tbody { @for deployment in &env.deployments { (brief_row(deployment)) } }
            } }
            p { a href=(format!("/?{query}")) { "Every deployment of " (app) " in " (env.environment) } }
        }
    }
}

fn brief_row(deployment: &DeploymentBrief) -> Markup {
    html! {
        tr {
            td { a href=(format!("/deployments/{}", deployment.id)) { code { (deployment.id) } } }
            td { (deployment.version) }
            td { span class=(format!("status s-{}", deployment.status.as_str())) { (deployment.status.as_str()) } }
            td { (layout::time(deployment.created_at)) }
            td class="clip" title=(deployment.triggered_by) { (deployment.triggered_by) }
        }
    }
}
