// An app's environments on its page: set and remove an environment's
// variables and change its type, default and protection, through
// PATCH /api/v1/apps/{app}/environments/{env}, and set or remove its
// secrets through PUT|DELETE .../secrets/{name} (a value goes only into
// that request and the field is cleared at once); the API checks the role
// (only an admin loosens a protected environment) and says why it refuses.
"use strict";

(function () {
  const { api, toast, confirmDialog } = window.berth;
  const panels = document.querySelectorAll(".environment[data-environment]");
  if (!panels.length) return;

  function at(panel) {
    const { app, environment } = panel.dataset;
    return `/api/v1/apps/${encodeURIComponent(app)}/environments/${encodeURIComponent(environment)}`;
  }

  async function change(panel, button, what, body) {
    button.disabled = true;
    try {
      await api("PATCH", at(panel), body);
      window.location.reload();
    } catch (err) {
      toast(`${what}: ${err.message}`, true);
      button.disabled = false;
    }
  }

  for (const panel of panels) {
    const where = `${panel.dataset.app}/${panel.dataset.environment}`;
    const setVar = panel.querySelector("form.set-var");
    if (setVar) {
      setVar.addEventListener("submit", (event) => {
        event.preventDefault();
        const name = setVar.elements.name.value.trim();
        change(panel, setVar.querySelector("button"), `Set ${name} in ${where}`,
          { vars: { [name]: setVar.elements.value.value } });
      });
    }
    const setSecret = panel.querySelector("form.set-secret");
    if (setSecret) {
      setSecret.addEventListener("submit", async (event) => {
        event.preventDefault();
        const name = setSecret.elements.name.value.trim();
        const value = setSecret.elements.value.value;
        setSecret.elements.value.value = "";
        const button = setSecret.querySelector("button");
        button.disabled = true;
        try {
          await api("PUT", `${at(panel)}/secrets/${encodeURIComponent(name)}`, { value });
          window.location.reload();
        } catch (err) {
          toast(`Set secret ${name} in ${where}: ${err.message}`, true);
          button.disabled = false;
        }
      });
    }
    const settings = panel.querySelector("form.env-settings");
    if (settings) {
      settings.addEventListener("submit", (event) => {
        event.preventDefault();
        const form = settings.elements;
        change(panel, settings.querySelector("button"), `Save ${where}`, {
          type: form.type.value,
          default: form.default.checked,
          protected: form.protected.checked,
          approvals: Number(form.approvals.value),
        });
      });
    }
    panel.addEventListener("click", async (event) => {
      const secret = event.target.closest('button[data-action="remove-secret"]');
      if (secret) {
        const name = secret.closest("tr").dataset.secret;
        if (!await confirmDialog(`Remove secret ${name} from ${where}?`,
          "Every version of it is removed; a deployment made with it cannot be retried until it is set again. It cannot be undone.",
          null, "Remove")) return;
        secret.disabled = true;
        try {
          await api("DELETE", `${at(panel)}/secrets/${encodeURIComponent(name)}`);
          window.location.reload();
        } catch (err) {
          toast(`Remove secret ${name} from ${where}: ${err.message}`, true);
          secret.disabled = false;
        }
        return;
      }
      const button = event.target.closest('button[data-action="unset-var"]');
      if (!button) return;
      const name = button.closest("tr").dataset.var;
      if (!await confirmDialog(`Remove ${name} from ${where}?`,
        "The next deploy here runs without it (or with the manifest's value). Deployments made before keep what they ran with.",
        null, "Remove")) return;
      change(panel, button, `Remove ${name} from ${where}`, { unset_vars: [name] });
    });
  }
})();
