// The Users and tokens page: adds, changes and removes users, makes setup
// links, makes and revokes API tokens, all through the public API. A new
// token or setup link is shown once, in a dialog, and never kept here.
"use strict";

(function () {
  const { api, toast, confirmDialog, showOnce, attempt } = window.berth;
  const users = document.querySelector("table.people");
  const tokens = document.querySelector("table.tokens");
  const addUser = document.getElementById("add-user");
  const newToken = document.getElementById("new-token");
  if (!users && !tokens && !addUser && !newToken) return;

  if (addUser) {
    addUser.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = addUser.elements;
      const body = { name: form.name.value.trim(), role: form.role.value };
      if (form.email.value.trim()) body.email = form.email.value.trim();
      const made = await attempt(addUser.querySelector("button"), `Add ${body.name}`,
        () => api("POST", "/api/v1/users", body));
      if (made) window.location.reload();
    });
  }

  if (users) {
    users.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const row = button.closest("tr");
      const name = row.dataset.user;
      const at = `/api/v1/users/${encodeURIComponent(name)}`;
      switch (button.dataset.action) {
        case "set-role": {
          const role = row.querySelector('select[name="role"]').value;
          if (await attempt(button, `Role of ${name}`, () => api("PATCH", at, { role }))) {
            toast(`${name} is now ${role}`);
          }
          break;
        }
        case "disable": case "enable": {
          const disabled = button.dataset.action === "disable";
          if (await attempt(button, `${button.textContent} ${name}`, () => api("PATCH", at, { disabled }))) {
            window.location.reload();
          }
          break;
        }
        case "setup-link": {
          const link = await attempt(button, `Setup link for ${name}`, () => api("POST", `${at}/setup-link`));
          if (link) {
            await showOnce(`Setup link for ${name}`,
              `Send it to ${name} privately. It works once, until ${link.expires_at}; a newer link replaces it.`, link.url);
          }
          break;
        }
        case "remove": {
          if (!await confirmDialog(`Remove ${name}?`,
            "The user's certificates, API tokens and web sessions stop working at once. Their deployments and audit entries stay. It cannot be undone.",
            name, "Remove")) return;
          if (await attempt(button, `Remove ${name}`, () => api("DELETE", at))) row.remove();
          break;
        }
        default:
      }
    });
  }

  if (newToken) {
    newToken.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = newToken.elements;
      const body = { name: form.name.value.trim() };
      if (form.expires.value) body.expires = form.expires.value;
      if (form.role_cap.value) body.role_cap = form.role_cap.value;
      const made = await attempt(newToken.querySelector("button"), `Token ${body.name}`,
        () => api("POST", "/api/v1/api-tokens", body));
      if (made) {
        await showOnce(`API token ${made.name}`,
          "Give it to CI as a secret; it acts for you with the role cap chosen.", made.token);
        window.location.reload();
      }
    });
  }

  if (tokens) {
    tokens.addEventListener("click", async (event) => {
      const button = event.target.closest('button[data-action="revoke"]');
      if (!button) return;
      const row = button.closest("tr");
      const { token, name } = row.dataset;
      if (!await confirmDialog(`Revoke token ${name}?`,
        "Whatever uses it is refused from its next call on. It cannot be undone.", null, "Revoke")) return;
      if (await attempt(button, `Revoke ${name}`, () => api("DELETE", `/api/v1/api-tokens/${encodeURIComponent(token)}`))) {
        window.location.reload();
      }
    });
  }
})();
