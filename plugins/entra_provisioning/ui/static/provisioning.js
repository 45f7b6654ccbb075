// The Provisioning page: fills the server-rendered structure from the plugin's JSON API.
// Every value from the directory or Salesforce is set with textContent, never parsed as HTML, so a
// user named "<script>alert(1)</script>" shows as text.
"use strict";

(function () {
  const API = document.body.dataset.api;
  const OUTCOMES = ["created", "updated", "deactivated", "escrowed", "quarantined"];
  const COLOURS = {created: "#2e7d32", updated: "#1565c0", deactivated: "#6d4c41", escrowed: "#c62828", quarantined: "#ef6c00"};
  const POLL_RUNNING_MS = 3000;
  const POLL_IDLE_MS = 30000;
  const charts = {};
  let refreshTimer = null;  // the one pending overview poll (refresh() replaces it, never adds one)
  let nextBefore = null;  // keyset paging: the next page's "before" (null: this is the last page)

  function $(id) { return document.getElementById(id); }

  function setText(id, value) { $(id).textContent = value === null || value === undefined || value === "" ? "–" : String(value); }

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  async function getJson(path, options) {
    const answer = await fetch(API + path, Object.assign({credentials: "same-origin"}, options || {}));
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(`${answer.status}: ${body.detail || answer.statusText}`);
    return body;
  }

  function showError(error) {
    const box = $("load-error");
    box.hidden = !error;
    box.textContent = error ? String(error.message || error) : "";
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    const total = Math.round(value);
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
  }

  // A user as the product names one everywhere (the report e-mail, the dry-run table, the steps):
  // "Display name (UPN)", the UPN alone without a name, the object id without a UPN. The same rule
  // as include/provisioning/model.py's user_label.
  function userLabel(row) {
    const who = row.user_principal_name || row.entra_id;
    return row.display_name ? `${row.display_name} (${who})` : who;
  }

  function utc(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC") : "–"; }

  function runHref(run) {
    return `/dags/${encodeURIComponent(run.dag_id)}/runs/${encodeURIComponent(run.run_id)}`;
  }

  // -- overview ------------------------------------------------------------------------------

  function renderCycle(cycle) {
    const link = $("cycle-run-link");
    if (!cycle) { setText("cycle-id", "no cycle yet"); link.hidden = true; return; }
    setText("cycle-id", cycle.cycle_id);
    setText("cycle-status", cycle.status);
    setText("cycle-mode", cycle.mode);
    setText("cycle-started", utc(cycle.started_at));
    setText("cycle-duration", seconds(cycle.duration_seconds));
    const progress = cycle.progress;
    setText("cycle-stage", cycle.status === "running"
      ? `${progress.stage || "starting"} (${progress.done} of ${progress.total} stages done)` : cycle.stage);
    $("cycle-progress").value = progress.percent;
    $("cycle-progress").textContent = `${progress.percent} %`;
    setText("cycle-reason", cycle.reason || "");
    for (const name of ["created", "updated", "unchanged", "deactivated", "quarantined", "escrowed", "held_back", "in_scope"]) {
      setText(`count-${name}`, cycle[name]);
    }
    setText("count-reactivated", cycle.reactivated ? `(${cycle.reactivated} reactivated)` : "");
    link.hidden = !cycle.airflow_run;
    if (cycle.airflow_run) {
      link.href = runHref(cycle.airflow_run);
      link.textContent = cycle.airflow_run.run_id;
    }
  }

  function fillList(id, items, describe) {
    const list = $(id);
    list.replaceChildren(...items.map((item) => element("li", describe(item))));
  }

  function renderOverview(data) {
    renderCycle(data.cycle);
    const quarantine = data.job_quarantine;
    setText("job-quarantine", quarantine.active
      ? `${quarantine.reason_code}: ${quarantine.reason} (next attempt ${utc(quarantine.next_attempt_at)})` : "not quarantined");
    const delta = data.delta_link;
    setText("delta-link-age", delta.present ? `${seconds(delta.age_seconds)} (saved ${utc(delta.updated_at)})` : "none: the next cycle is full");
    setText("escrow-count", `${data.escrow.count} (${data.escrow.due} due)`);
    setText("quarantined-count", data.quarantined_users.count);
    setText("held-back-count", data.held_back.count);
    fillList("held-back-list", data.held_back.items, (row) => `${userLabel(row)}, ${row.sf_id || "no Salesforce id"}`);
    fillList("escrow-list", data.escrow.items,
      (row) => `${userLabel(row)}: ${row.action}, attempt ${row.attempts}, next retry ${utc(row.next_attempt_at)}: ${row.error_code || ""} ${row.error_message || ""}`);
    fillList("quarantined-list", data.quarantined_users.items,
      (row) => `${userLabel(row)}: ${row.reasons.join("; ")}`);
    return data.cycle && data.cycle.status === "running";
  }

  function chart(id, config) {
    if (charts[id]) { charts[id].data = config.data; charts[id].update(); return; }
    charts[id] = new Chart($(id), config);
  }

  function renderCharts(cycles) {
    const labels = cycles.map((c) => utc(c.started_at));
    chart("chart-outcomes", {
      type: "bar",
      data: {labels, datasets: OUTCOMES.map((name) => ({label: name, data: cycles.map((c) => c[name]), backgroundColor: COLOURS[name]}))},
      options: {animation: false, responsive: true, scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}},
        plugins: {title: {display: true, text: "Outcomes per cycle"}}},
    });
    chart("chart-duration", {
      type: "line",
      data: {labels, datasets: [{label: "duration (s)", data: cycles.map((c) => c.duration_seconds), borderColor: "#37474f"}]},
      options: {animation: false, responsive: true, scales: {y: {beginAtZero: true}},
        plugins: {title: {display: true, text: "Cycle duration (seconds)"}}},
    });
  }

  async function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    let running = false;
    try {
      running = renderOverview(await getJson("/overview"));
      renderCharts((await getJson("/cycles?limit=30")).cycles);
      showError(null);
    } catch (error) {
      showError(error);
    }
    clearTimeout(refreshTimer);  // an action's refresh may have landed while this one waited
    refreshTimer = setTimeout(refresh, running ? POLL_RUNNING_MS : POLL_IDLE_MS);
  }

  // -- the log -------------------------------------------------------------------------------

  function filterParams() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData($("log-filters"))) {
      if (!value) continue;
      // datetime-local has no zone: the page works in UTC, like the log.
      params.set(name, (name === "since" || name === "until") ? `${value}:00+00:00` : value);
    }
    return params;
  }

  async function loadLog(before) {
    $("log-detail").hidden = true;  // the open row may not be on the new page
    const params = filterParams();
    $("log-export").href = `${API}/log.csv?${params}`;
    if (before !== null && before !== undefined) params.set("before", before);
    try {
      const page = await getJson(`/log?${params}`);
      $("log-rows").replaceChildren(...page.rows.map(logRow));
      nextBefore = page.next_before;
      $("log-next").disabled = nextBefore === null;
      showError(null);
    } catch (error) {
      showError(error);
    }
  }

  function logRow(row) {
    const tr = element("tr", null, {"data-row-id": row.id, "data-testid": "log-row", tabindex: "0"});
    tr.append(
      element("td", utc(row.at)), element("td", row.action), element("td", row.status, {class: `status-${row.status}`}),
      element("td", row.display_name || ""), element("td", row.user_principal_name || row.entra_id),
      element("td", row.sf_id || ""),
      element("td", row.error_code ? `${row.error_code}: ${row.error_message || ""}` : (row.error_message || "")),
    );
    tr.addEventListener("click", () => openRow(row.id));
    tr.addEventListener("keydown", (event) => { if (event.key === "Enter") openRow(row.id); });
    return tr;
  }

  function renderSteps(listId, steps) {
    $(listId).replaceChildren(...steps.map((step) => {
      const item = element("li", null, {class: `status-${step.status}`, "data-step": step.name});
      item.append(element("strong", `${step.name}: ${step.status}`), element("span", ` ${step.detail}`));
      return item;
    }));
  }

  async function openRow(rowId) {
    try {
      const row = await getJson(`/log/${encodeURIComponent(rowId)}`);
      $("log-detail").hidden = false;
      setText("detail-title", `${row.action} ${userLabel(row)} (${row.status})`);
      renderSteps("detail-steps", row.steps);
      $("detail-changes").tBodies[0].replaceChildren(...row.changes.map((change) => {
        const tr = element("tr");
        tr.append(element("td", change.property), element("td", JSON.stringify(change.old)), element("td", JSON.stringify(change.new)));
        return tr;
      }));
      $("detail-error").textContent = row.error_code ? `Salesforce: ${row.error_code}: ${row.error_message || ""}` : "";
    } catch (error) {
      showError(error);
    }
  }

  // -- actions -------------------------------------------------------------------------------

  async function act(name, body) {
    const result = $("action-result");
    delete result.dataset.runId;  // the previous action's run and state no longer describe this one
    delete result.dataset.state;
    $("action-steps").replaceChildren();
    result.textContent = `${name}: starting…`;
    try {
      const run = await getJson(`/actions/${encodeURIComponent(name)}`, {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {}),
      });
      result.textContent = `${name}: run ${run.dag_run_id} ${run.state}`;
      result.dataset.runId = run.dag_run_id;
      followRun(name, run.dag_run_id);
    } catch (error) {
      result.textContent = `${name}: ${error.message}`;
    }
  }

  async function followRun(name, runId) {
    try {
      const found = await getJson(`/runs/${encodeURIComponent(runId)}`);
      const state = found.run.state;
      $("action-result").textContent = `${name}: run ${runId} ${state}` + (found.cycle ? ` (cycle ${found.cycle.cycle_id}, ${found.cycle.stage || "starting"})` : "");
      $("action-result").dataset.state = state;
      if (state === "success" || state === "failed") {
        $("action-steps").replaceChildren(...found.log.map((row) => {
          const item = element("li", `${row.action} ${userLabel(row)}: ${row.status}`,
            {"data-testid": "action-log-row"});
          const steps = element("ol");
          steps.replaceChildren(...row.steps.map((step) => element("li", `${step.name}: ${step.status}: ${step.detail}`, {"data-step": step.name})));
          item.append(steps);
          return item;
        }));
        if (state === "success" && found.cycle && !found.log.length) {
          // The log records changes only: a user already up to date leaves no row.
          $("action-result").textContent += ": nothing to change";
        }
        refresh();
        loadLog(null);  // the run's rows are in the log now
        return;
      }
      // The overview follows the run the user started (it may have been idle, polling slowly).
      refresh();
    } catch (error) {
      $("action-result").textContent = `${name}: ${error.message}`;
      return;
    }
    setTimeout(() => followRun(name, runId), POLL_RUNNING_MS);
  }

  // -- start ---------------------------------------------------------------------------------

  async function openRunFromQuery() {
    // The DAG run view's link passes ?dag_id=&run_id= (Airflow fills {DAG_ID} and {RUN_ID}).
    const query = new URLSearchParams(window.location.search);
    if (!query.get("run_id")) return;
    try {
      const cycle = await getJson(`/cycles/by-run?${new URLSearchParams({dag_id: query.get("dag_id") || document.body.dataset.dagId, run_id: query.get("run_id")})}`);
      $("log-cycle").value = cycle.cycle_id;
    } catch (error) {
      showError(error);
    }
  }

  $("log-filters").addEventListener("submit", (event) => { event.preventDefault(); loadLog(null); });
  $("log-first").addEventListener("click", () => loadLog(null));
  $("log-next").addEventListener("click", () => { if (nextBefore !== null) loadLog(nextBefore); });
  $("action-provision").addEventListener("submit", (event) => {
    event.preventDefault();
    act("provision_user", {user: $("provision-upn").value});
  });
  // Confirmed in the page's own <dialog>: in the Airflow UI's sandboxed iframe window.confirm()
  // is ignored and answers false.
  const confirmation = $("action-confirm");
  confirmation.addEventListener("close", () => {
    if (confirmation.returnValue === "run") act(confirmation.dataset.action, {});
  });
  for (const button of document.querySelectorAll("button.action")) {
    button.addEventListener("click", () => {
      confirmation.dataset.action = button.dataset.action;
      confirmation.returnValue = "";
      $("action-confirm-text").textContent = `${button.title}?`;
      confirmation.showModal();
    });
  }
  openRunFromQuery().then(() => loadLog(null));
  refresh();
})();
