// A deployment's page: its live log over the API's event stream, with
// filters, follow and find, its status kept current, and its approval
// (Approve, when the page offers it).
"use strict";

(function () {
  const { api, toast, confirmDialog } = window.berth;
  const logFilters = document.getElementById("log-filters");
  if (logFilters) followLog(logFilters);

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
      approvalChanged(d);
    });
    changes.addEventListener("end", () => changes.close());
  }

  // The approval panel: Approve sends it to the API (after asking); once
  // the approval is no longer pending, the button goes and the text says
  // how it ended.
  const panel = document.getElementById("approval");
  const approveButton = panel && panel.querySelector('button[data-action="approve"]');
  if (approveButton) {
    approveButton.addEventListener("click", async () => {
      const what = approveButton.dataset.what;
      if (!await confirmDialog(`Approve ${what}?`,
        "It runs now, as its requester asked for it; the audit log names you as its approver.",
        null, "Approve")) return;
      approveButton.disabled = true;
      try {
        approvalChanged(await api("POST", `/api/v1/deployments/${encodeURIComponent(approveButton.dataset.id)}/approve`));
        toast(`Approved ${what}`);
      } catch (err) {
        toast(`Approve ${what}: ${err.message}`, true);
        approveButton.disabled = false;
      }
    });
  }

  function approvalChanged(d) {
    const approval = d.approval;
    if (!panel || !approval || approval.outcome === "pending") return;
    panel.classList.remove("waiting");
    if (approveButton) approveButton.remove();
    const text = document.getElementById("approval-text");
    text.textContent = approval.approved
      ? `approved by ${approval.approved.by} at ${approval.approved.at}; ${approval.action} requested by ${approval.requested_by}`
      : `${approval.outcome}${approval.reason ? `: ${approval.reason}` : ""}; ${approval.action} requested by ${approval.requested_by}`;
  }
})();
