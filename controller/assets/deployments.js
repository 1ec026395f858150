// The Deployments page: keeps the table live from /api/v1/events and sends
// a row's actions to the API (confirming what cannot be undone).
"use strict";

(function () {
  const { api, toast, meta, confirmDialog } = window.berth;
  const table = document.querySelector("table.deployments");
  if (!table) return;
  const operator = table.dataset.operator === "yes";
  const running = ["pending_approval", "pending", "setup_running", "setup_complete", "building", "deploying"];

  // Whether the signed-in user may approve what `d` waits for; the same
  // rule as the controller's (controller/src/ops/approvals.rs,
  // `check_approver`): never the requester, an admin, or with two
  // approvals another operator.
  function mayApprove(d) {
    const approval = d.approval;
    if (!approval || approval.outcome !== "pending") return false;
    const requester = approval.requested_by.split(" via token ")[0];
    if (requester === meta("berth-user")) return false;
    const role = meta("berth-role");
    return role === "admin" || (role === "operator" && approval.approvals >= 2);
  }

  // The actions of a row in `status`; the same rule as the page's
  // (controller/src/web/deployments.rs, `actions`).
  function actionsFor(status, approve) {
    const list = approve ? [["approve", "Approve"]] : [];
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

  function fillActions(cell, status, approve) {
    cell.replaceChildren();
    if (!operator) return;
    for (const [action, label] of actionsFor(status, approve)) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      button.textContent = label;
      if (action === "delete" || action === "purge") button.className = "danger";
      cell.appendChild(button);
    }
  }

  function setStatus(row, status, approve) {
    row.dataset.status = status;
    row.dataset.approve = approve ? "yes" : "";
    const badge = row.querySelector(".status");
    badge.className = `status s-${status}`;
    badge.textContent = status;
    fillActions(row.querySelector(".actions"), status, approve);
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
    setStatus(row, d.status, mayApprove(d));
    return row;
  }

  // Whether a new deployment belongs on this page as it is filtered.
  function belongs(d) {
    if (table.dataset.live !== "prepend") return false;
    const query = new URLSearchParams(window.location.search);
    if (query.get("q") || query.get("status")) return false;
    if (query.get("app") && d.app !== query.get("app")) return false;
    if (query.get("environment") && d.environment !== query.get("environment")) return false;
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
      const approve = mayApprove(d);
      if (row.dataset.status !== d.status || (row.dataset.approve === "yes") !== approve) {
        setStatus(row, d.status, approve);
      }
      const hosts = [...new Set((d.tasks || []).map((t) => t.host))].sort().join(", ");
      row.children[5].textContent = hosts;
    } else if (belongs(d)) {
      table.tBodies[0].prepend(newRow(d));
      const empty = document.querySelector(".empty");
      if (empty) empty.hidden = true;
    }
  });

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
      case "approve":
        if (!await confirmDialog(`Approve the change to ${app} (${environment})?`,
          "It runs now, as its requester asked for it; the audit log names you as its approver.",
          null, "Approve")) return;
        call = () => api("POST", `${at}/approve`);
        break;
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

})();
