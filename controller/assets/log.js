// A deployment's page: its live log over the API's event stream, with
// filters, follow and find, and its status kept current.
"use strict";

(function () {
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
    });
    changes.addEventListener("end", () => changes.close());
  }
})();
