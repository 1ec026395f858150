// The Webhooks page: adds an endpoint (showing its signing secret once),
// sends a test delivery, enables and removes one, all through the public
// API with the session's CSRF token.
"use strict";

(function () {
  const { api, toast, confirmDialog, showOnce, attempt } = window.berth;
  const add = document.getElementById("add-webhook");
  const sections = document.querySelectorAll("section.webhook");
  if (!add && sections.length === 0) return;

  if (add) {
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = add.elements;
      const body = { url: form.url.value.trim(), format: form.format.value };
      if (form.app.value.trim()) body.app = form.app.value.trim();
      if (form.environment.value.trim()) body.environment = form.environment.value.trim();
      body.events = Array.from(add.querySelectorAll('input[name="events"]:checked')).map((box) => box.value);
      const made = await attempt(add.querySelector('button[type="submit"]'), "Add the webhook",
        () => api("POST", "/api/v1/webhooks", body));
      if (made) {
        await showOnce(`Webhook ${made.webhook.url}`,
          "Receivers check each delivery's webhook-signature with this secret.", made.secret);
        window.location.reload();
      }
    });
  }

  sections.forEach((section) => {
    section.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const id = section.dataset.webhook;
      const at = `/api/v1/webhooks/${encodeURIComponent(id)}`;
      switch (button.dataset.action) {
        case "test": {
          const queued = await attempt(button, "Send a test", () => api("POST", `${at}/test`));
          if (queued) { toast(`Test delivery ${queued.id} queued`); window.setTimeout(() => window.location.reload(), 1500); }
          break;
        }
        case "enable": {
          if (await attempt(button, "Enable", () => api("POST", `${at}/enable`))) window.location.reload();
          break;
        }
        case "remove": {
          if (!await confirmDialog("Remove this webhook?",
            "It gets no more events, and the deliveries waiting for it are dropped. It cannot be undone.", null, "Remove")) return;
          if (await attempt(button, "Remove", () => api("DELETE", at))) section.remove();
          break;
        }
        default:
      }
    });
  });
})();
