// An app's environments on its page: set and remove an environment's
// variables and change its type, default and protection, through
// PATCH /api/v1/apps/{app}/environments/{env}; the API checks the role
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
