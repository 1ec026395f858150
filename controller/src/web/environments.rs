//! An environment on its app's page: its record (type, whether it is the
//! app's default, its protection) and its variables, with the forms an
//! operator changes them with. The record is `ops::environments`'s, as
//! for `berth env show` and the API; the script (`assets/environments.js`)
//! sends each change to `PATCH /api/v1/apps/{app}/environments/{environment}`,
//! where the roles are checked (only an admin loosens a protected one).

use berth_shared::record::{EnvironmentKind, EnvironmentView, SecretView};
use maud::{Markup, html};

use super::layout;

/// The secrets of one environment: names, versions and who changed them
/// (never a value), and, for an operator, a form to set one; the value
/// goes only into the request (`PUT .../secrets/{name}`).
fn secrets(app: &str, environment: &str, secrets: &[SecretView], operator: bool) -> Markup {
    html! {
        @if secrets.is_empty() {
            p class="muted" { "No secret here (" code { "berth secret set " (app) "/" (environment) " NAME" } ")." }
        } @else {
            div class="scroll" role="region" tabindex="0" aria-label=(format!("Secrets of {app} in {environment}")) {
                table class="stages secrets" {
                    thead { tr { th scope="col" { "Secret" } th scope="col" { "Version" } th scope="col" { "Changed" }
                        @if operator { th scope="col" { span class="visually-hidden" { "Actions" } } } } }
                    tbody { @for secret in secrets {
                        tr data-secret=(secret.name) {
                            td { code { (secret.name) } }
                            td { (secret.version) }
                            td { (layout::time(secret.updated_at)) " by " (secret.updated_by) }
                            @if operator { td { button type="button" class="danger" data-action="remove-secret" { "Remove" } } }
                        }
                    } }
                }
            }
        }
    }
}

/// The record of one environment, and the forms when `operator`.
pub fn panel(
    app: &str,
    environment: &EnvironmentView,
    its_secrets: &[SecretView],
    operator: bool,
) -> Markup {
    let id = |what: &str| format!("{what}-{}", environment.name);
    html! {
        div class="environment" data-app=(app) data-environment=(environment.name) {
            p class="summary" {
                span class=(format!("kind k-{}", environment.kind)) { (environment.kind) }
                @if environment.is_default { span { "the app's default" } }
                @if environment.protected {
                    span { "protected: " (environment.approvals) " approval" @if environment.approvals > 1 { "s" } " needed" }
                }
            }
            @if environment.vars.is_empty() {
                p class="muted" { "No variables of its own; the manifest's " code { "[env]" } " apply." }
            } @else {
                div class="scroll" role="region" tabindex="0" aria-label=(format!("Variables of {app} in {}", environment.name)) {
                    table class="stages vars" {
                        thead { tr { th scope="col" { "Variable" } th scope="col" { "Value" }
                            @if operator { th scope="col" { span class="visually-hidden" { "Actions" } } } } }
                        tbody { @for (name, value) in &environment.vars {
                            tr data-var=(name) {
                                td { code { (name) } }
                                td class="clip" title=(value) { code { (value) } }
                                @if operator { td { button type="button" class="danger" data-action="unset-var" { "Remove" } } }
                            }
                        } }
                    }
                }
            }
            (secrets(app, &environment.name, its_secrets, operator))
            @if operator {
                details class="env-edit" {
                summary { "Change " (environment.name) ": variables, secrets, type, protection" }
                form class="filters set-secret" {
                    div { label for=(id("secret-name")) { "Secret" }
                        input id=(id("secret-name")) name="name" required maxlength="128" autocomplete="off" placeholder="DATABASE_URL"; }
                    div { label for=(id("secret-value")) { "Value" }
                        input id=(id("secret-value")) name="value" type="password" required maxlength="65536" autocomplete="new-password"; }
                    div { button type="submit" { "Set secret" } }
                }
                form class="filters set-var" {
                    div { label for=(id("var-name")) { "Variable" }
                        input id=(id("var-name")) name="name" required maxlength="128" autocomplete="off" placeholder="LOG_LEVEL"; }
                    div { label for=(id("var-value")) { "Value" }
                        input id=(id("var-value")) name="value" maxlength="32768" autocomplete="off"; }
                    div { button type="submit" { "Set variable" } }
                }
                form class="filters env-settings" {
                    div { label for=(id("kind")) { "Type" }
                        select id=(id("kind")) name="type" {
                            @for kind in EnvironmentKind::NAMES {
                                option value=(kind) selected[environment.kind == kind] { (kind) }
                            }
                        } }
                    div class="check" { input id=(id("default")) type="checkbox" name="default" checked[environment.is_default];
                        label for=(id("default")) { "Default" } }
                    div class="check" { input id=(id("protected")) type="checkbox" name="protected" checked[environment.protected];
                        label for=(id("protected")) { "Protected" } }
                    div { label for=(id("approvals")) { "Approvals" }
                        select id=(id("approvals")) name="approvals" {
                            option value="1" selected[environment.approvals <= 1] { "1 (an admin)" }
                            option value="2" selected[environment.approvals >= 2] { "2 (two operators)" }
                        } }
                    div { button type="submit" { "Save" } }
                }
                }
            }
        }
    }
}
