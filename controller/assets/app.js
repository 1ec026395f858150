// berth's dashboard script, shared by every page: calls of the public API
// with the session's CSRF token, messages, confirmations, and signing in
// and out. Each page's own script (deployments.js, log.js, people.js,
// apps.js, environments.js, webhooks.js) uses these through `window.berth`. Text reaches the page
// through textContent only, never as HTML.
"use strict";

(function () {
  const meta = (name) => {
    const element = document.querySelector(`meta[name="${name}"]`);
    return element ? element.content : "";
  };
  const csrf = meta("csrf-token");

  function toast(text, bad) {
    const box = document.querySelector(".toast");
    if (!box) return;
    const line = document.createElement("p");
    line.textContent = text;
    if (bad) line.className = "bad";
    box.appendChild(line);
    setTimeout(() => line.remove(), bad ? 10000 : 4000);
  }

  // A call of the public API; resolves to the parsed answer or throws an
  // Error with the API's message and code.
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": csrf };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      const error = (data && data.error) || {};
      const err = new Error(error.message || `the controller answered ${response.status}`);
      err.code = error.code || "";
      err.status = response.status;
      throw err;
    }
    return data;
  }

  // Sign in.
  const signIn = document.getElementById("sign-in");
  if (signIn) {
    signIn.addEventListener("submit", async (event) => {
      event.preventDefault();
      const problem = signIn.querySelector(".error");
      const button = signIn.querySelector("button");
      button.disabled = true;
      problem.hidden = true;
      try {
        await api("POST", "/api/v1/session", {
          name: signIn.elements.name.value,
          password: signIn.elements.password.value,
        });
        window.location.assign(signIn.dataset.next || "/");
      } catch (err) {
        problem.textContent = err.message;
        problem.hidden = false;
        button.disabled = false;
        signIn.elements.password.focus();
      }
    });
  }

  // Sign out.
  document.querySelectorAll('[data-action="sign-out"]').forEach((button) => {
    button.addEventListener("click", async () => {
      try { await api("DELETE", "/api/v1/session"); } catch (_) { /* ended already */ }
      window.location.assign("/login");
    });
  });

  // A modal dialog with a heading and a paragraph, not yet shown.
  function dialogWith(title, text) {
    const dialog = document.createElement("dialog");
    const heading = document.createElement("h2");
    heading.textContent = title;
    const body = document.createElement("p");
    body.textContent = text;
    dialog.append(heading, body);
    return dialog;
  }

  // A dialog that asks before something that cannot be undone; resolves
  // true when confirmed. With `typed`, the user must type it to confirm.
  function confirmDialog(title, text, typed, verb) {
    return new Promise((resolve) => {
      const dialog = dialogWith(title, text);
      let input = null;
      if (typed) {
        const label = document.createElement("label");
        label.textContent = `Type ${typed} to confirm`;
        label.htmlFor = "confirm-typed";
        input = document.createElement("input");
        input.id = "confirm-typed";
        input.autocomplete = "off";
        dialog.append(label, input);
      }
      const buttons = document.createElement("div");
      buttons.className = "buttons";
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.textContent = "Keep it";
      const go = document.createElement("button");
      go.type = "button";
      go.className = "danger";
      go.textContent = verb;
      go.disabled = Boolean(typed);
      buttons.append(cancel, go);
      dialog.appendChild(buttons);
      if (input) input.addEventListener("input", () => { go.disabled = input.value !== typed; });
      const close = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
      cancel.addEventListener("click", () => close(false));
      go.addEventListener("click", () => close(true));
      dialog.addEventListener("cancel", () => close(false));
      document.body.appendChild(dialog);
      dialog.showModal();
      (input || cancel).focus();
    });
  }

  // A secret shown once: its text selected in a read-only field, to copy.
  function showOnce(title, text, secret) {
    return new Promise((resolve) => {
      const dialog = dialogWith(title, text);
      const label = document.createElement("label");
      label.htmlFor = "secret-once";
      label.textContent = "Copy it now: it is not shown again";
      const field = document.createElement("input");
      field.id = "secret-once";
      field.readOnly = true;
      field.value = secret;
      const buttons = document.createElement("div");
      buttons.className = "buttons";
      const copy = document.createElement("button");
      copy.type = "button";
      copy.textContent = "Copy";
      copy.addEventListener("click", async () => {
        field.select();
        try { await navigator.clipboard.writeText(secret); copy.textContent = "Copied"; } catch (_) { copy.textContent = "Press Ctrl+C"; }
      });
      const done = document.createElement("button");
      done.type = "button";
      done.className = "primary";
      done.textContent = "Done";
      buttons.append(copy, done);
      dialog.append(label, field, buttons);
      const close = () => { field.value = ""; dialog.close(); dialog.remove(); resolve(); };
      done.addEventListener("click", close);
      dialog.addEventListener("cancel", close);
      document.body.appendChild(dialog);
      dialog.showModal();
      field.select();
      field.focus();
    });
  }

  // Runs one change with its button disabled; a failure is a toast.
  async function attempt(button, what, call) {
    if (button) button.disabled = true;
    try {
      return await call();
    } catch (err) {
      toast(`${what}: ${err.message}`, true);
      return null;
    } finally {
      if (button) button.disabled = false;
    }
  }

  window.berth = { api, toast, meta, dialogWith, confirmDialog, showOnce, attempt };
})();
