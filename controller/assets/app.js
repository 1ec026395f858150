// berth's dashboard script: signs in and out through the public API,
// keeps the Deployments table live from /api/v1/events, and sends a row's
// actions to the API with the session's CSRF token. Text reaches the page
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

  // A deployment's page: its live log, with filters, follow and find.
  const logFilters = document.getElementById("log-filters");
  if (logFilters) followLog(logFilters);

  const table = document.querySelector("table.deployments");
  if (!table) return;
  const operator = table.dataset.operator === "yes";
  const running = ["pending", "setup_running", "setup_complete", "building", "deploying"];

  // The actions of a row in `status`; the same rule as the page's
  // (controller/src/web/deployments.rs, `actions`).
  function actionsFor(status) {
    const list = [];
    const is = (...names) => names.includes(status);
    const live = running.includes(status);
    if (live) list.push(["cancel", "Cancel"]);
    if (is("failed", "canceled", "timed_out")) list.push(["retry", "Update"]);
    if (is("deployed", "stopped", "superseded")) list.push(["redeploy", "Redeploy"]);
    if (is("deployed")) list.push(["rollback", "Roll back"], ["stop", "Stop"]);
    if (!live && status !== "deleted") list.push(["delete", "Delete"]);
    if (!live) list.push(["purge", "Purge"]);
    return list;
  }

  function fillActions(cell, status) {
    cell.replaceChildren();
    if (!operator) return;
    for (const [action, label] of actionsFor(status)) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      button.textContent = label;
      if (action === "delete" || action === "purge") button.className = "danger";
      cell.appendChild(button);
    }
  }

  function setStatus(row, status) {
    row.dataset.status = status;
    const badge = row.querySelector(".status");
    badge.className = `status s-${status}`;
    badge.textContent = status;
    fillActions(row.querySelector(".actions"), status);
  }

  // A cell of text that may be cut short on screen (its title holds it).
  function cell(text, clip) {
    const td = document.createElement("td");
    td.textContent = text;
    if (clip) {
      td.className = "clip";
      td.title = text;
    }
    return td;
  }

  function newRow(d) {
    const row = document.createElement("tr");
    row.dataset.id = d.id;
    row.dataset.app = d.app;
    row.dataset.environment = d.environment;
    const id = document.createElement("td");
    const link = document.createElement("a");
    link.href = `/deployments/${encodeURIComponent(d.id)}`;
    const code = document.createElement("code");
    code.textContent = d.id;
    link.appendChild(code);
    id.appendChild(link);
    const status = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "status";
    status.appendChild(badge);
    const hosts = [...new Set((d.tasks || []).map((t) => t.host))].sort().join(", ");
    const created = document.createElement("td");
    const time = document.createElement("time");
    time.dateTime = d.created_at;
    time.title = d.created_at;
    time.textContent = "just now";
    created.appendChild(time);
    const actions = document.createElement("td");
    actions.className = "actions";
    row.append(id, cell(d.app, true), cell(d.environment, true), cell(d.version, true), status,
      cell(hosts), created, cell(d.triggered_by, true), actions);
    setStatus(row, d.status);
    return row;
  }

  // Whether a new deployment belongs on this page as it is filtered.
  function belongs(d) {
    if (table.dataset.live !== "prepend") return false;
    const query = new URLSearchParams(window.location.search);
    if (query.get("q") || query.get("status") || query.get("environment")) return false;
    if (query.get("view") === "mine") {
      const user = meta("berth-user");
      return d.triggered_by === user || d.triggered_by.startsWith(`${user} via token `);
    }
    return true;
  }

  const events = new EventSource("/api/v1/events");
  events.addEventListener("deployment", (event) => {
    let d;
    try { d = JSON.parse(event.data); } catch (_) { return; }
    const row = table.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`);
    if (row) {
      if (row.dataset.status !== d.status) setStatus(row, d.status);
      const hosts = [...new Set((d.tasks || []).map((t) => t.host))].sort().join(", ");
      row.children[5].textContent = hosts;
    } else if (belongs(d)) {
      table.tBodies[0].prepend(newRow(d));
      const empty = document.querySelector(".empty");
      if (empty) empty.hidden = true;
    }
  });

  // A dialog that asks before something that cannot be undone; resolves
  // true when confirmed. With `typed`, the user must type it to confirm.
  function confirmDialog(title, text, typed, verb) {
    return new Promise((resolve) => {
      const dialog = document.createElement("dialog");
      const heading = document.createElement("h2");
      heading.textContent = title;
      const body = document.createElement("p");
      body.textContent = text;
      dialog.append(heading, body);
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

  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    const { id, app, environment } = row.dataset;
    const action = button.dataset.action;
    const at = `/api/v1/deployments/${encodeURIComponent(id)}`;
    const ofApp = `/api/v1/apps/${encodeURIComponent(app)}`;
    let call;
    switch (action) {
      case "cancel": case "retry": case "redeploy":
        call = () => api("POST", `${at}/${action}`);
        break;
      case "rollback":
        call = () => api("POST", `${ofApp}/rollback`, { environment });
        break;
      case "stop":
        call = () => api("POST", `${ofApp}/stop`, { environment });
        break;
      case "delete":
        if (!await confirmDialog(`Delete ${app} (${environment})?`,
          "This tears down its containers, routes and work directory on its hosts. It cannot be undone.",
          app, "Delete")) return;
        call = () => api("POST", `${at}/delete`);
        break;
      case "purge":
        if (!await confirmDialog(`Purge deployment ${id}?`,
          "berth forgets its record and its logs. Whatever it left on the hosts (containers, routes, files) stays as it is; delete it first to tear that down.",
          null, "Purge")) return;
        call = () => api("POST", `${at}/purge`);
        break;
      default:
        return;
    }
    button.disabled = true;
    try {
      const answer = await call();
      if (action === "purge") row.remove();
      const made = answer && answer.id && answer.id !== id ? ` as ${answer.id}` : "";
      toast(`${button.textContent}: ${app}${made}`);
    } catch (err) {
      toast(`${button.textContent} ${app}: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  });

  function followLog(form) {
    const id = form.dataset.id;
    const log = document.getElementById("log");
    const state = document.getElementById("log-state");
    const follow = document.getElementById("log-follow");
    const find = document.getElementById("log-search");
    const status = document.getElementById("status");
    let source = null;

    function shown(line) {
      const needle = find.value.trim().toLowerCase();
      return !needle || line.textContent.toLowerCase().includes(needle);
    }
    find.addEventListener("input", () => {
      for (const line of log.children) line.hidden = !shown(line);
    });

    function open() {
      if (source) source.close();
      log.replaceChildren();
      const query = new URLSearchParams({ follow: "true" });
      for (const name of ["level", "stage", "stream", "host"]) {
        const value = form.elements[name].value;
        if (value) query.set(name, value);
      }
      state.textContent = "Following…";
      source = new EventSource(`/api/v1/deployments/${encodeURIComponent(id)}/logs?${query}`);
      source.addEventListener("line", (event) => {
        let entry;
        try { entry = JSON.parse(event.data); } catch (_) { return; }
        const line = document.createElement("span");
        line.className = `line ${entry.stream}`;
        line.textContent = `${entry.host} ${entry.stage} ${entry.line}\n`;
        line.hidden = !shown(line);
        log.appendChild(line);
        if (follow.checked) log.scrollTop = log.scrollHeight;
      });
      source.addEventListener("end", () => {
        state.textContent = "The deployment settled; this is its whole log.";
        source.close();
      });
      source.addEventListener("error", () => {
        if (source.readyState === EventSource.CLOSED) state.textContent = "The log stream closed.";
      });
    }
    for (const name of ["level", "stage", "stream", "host"]) {
      form.elements[name].addEventListener("change", open);
    }
    form.addEventListener("submit", (event) => event.preventDefault());
    open();

    // The status at the top follows the deployment's own events.
    const changes = new EventSource(`/api/v1/deployments/${encodeURIComponent(id)}/events`);
    changes.addEventListener("deployment", (event) => {
      let d;
      try { d = JSON.parse(event.data); } catch (_) { return; }
      status.className = `status s-${d.status}`;
      status.textContent = d.status;
    });
    changes.addEventListener("end", () => changes.close());
  }
})();
