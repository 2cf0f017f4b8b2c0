// The job monitor: the table is fetched from /api/jobs (paged, sorted and filtered by
// the service), re-fetched every DIRAC_REFRESH_MS without reloading the page.
"use strict";
const state = { start: 0, limit: 25, sort: "JobID", dir: "DESC", selected: new Set(), total: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== "") node.textContent = text;
  return node;
}

function query() {
  const params = new URLSearchParams();
  for (const name of window.DIRAC_FILTERS) {
    for (const option of $("f-" + name).selectedOptions) params.append(name, option.value);
  }
  const ids = $("f-JobID").value.trim();
  if (ids) params.set("JobID", ids);
  for (const key of ["FromDate", "ToDate"]) {
    const value = $("f-" + key).value;
    if (value) params.set(key, value);
  }
  params.set("sort", state.sort);
  params.set("dir", state.dir);
  params.set("start", state.start);
  params.set("limit", state.limit);
  return params;
}

function showError(message) {
  const box = $("load-error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function loadJobs() {
  const response = await fetch("/api/jobs?" + query().toString());
  if (response.status === 401) { window.location = "/login"; return; }
  const data = await response.json();
  if (!response.ok) { showError(data.error || response.statusText); return; }
  showError("");
  state.total = data.total;
  const body = document.querySelector("#jobs tbody");
  body.replaceChildren();
  for (const row of data.rows) {
    const tr = el("tr", { "data-job-id": row.JobID, "data-status": row.Status });
    const box = el("input", { type: "checkbox", class: "pick", value: row.JobID });
    box.checked = state.selected.has(row.JobID);
    box.addEventListener("change", () => {
      box.checked ? state.selected.add(row.JobID) : state.selected.delete(row.JobID);
      $("selected-count").textContent = state.selected.size + " selected";
    });
    const first = el("td");
    first.append(box);
    tr.append(first);
    for (const column of window.DIRAC_COLUMNS) {
      const td = el("td", { class: "col-" + column });
      if (column === "JobID") {
        td.append(el("a", { href: "/jobs/" + row.JobID }, String(row.JobID)));
      } else {
        const value = row[column] === null || row[column] === undefined ? "" : String(row[column]);
        // ISO times from the server are UTC: shown as "YYYY-MM-DD HH:MM:SS".
        td.textContent = column.endsWith("Time") ? value.replace("T", " ").replace("+00:00", "") : value;
      }
      tr.append(td);
    }
    body.append(tr);
  }
  const last = Math.min(state.start + state.limit, data.total);
  $("page-info").textContent = data.total ? `${state.start + 1}-${last} of ${data.total}` : "no jobs";
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  for (const th of document.querySelectorAll("th.sortable")) {
    th.classList.toggle("asc", th.dataset.sort === state.sort && state.dir === "ASC");
    th.classList.toggle("desc", th.dataset.sort === state.sort && state.dir === "DESC");
  }
  chart("chart-status", data.byStatus);
}

function chart(id, counts) {
  const box = $(id);
  box.replaceChildren();
  const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
  const top = Math.max(1, ...entries.map((e) => e[1]));
  for (const [name, count] of entries) {
    const bar = el("div", { class: "bar", "data-name": name, "data-count": count });
    bar.append(el("span", { class: "label" }, name));
    const fill = el("span", { class: "fill" });
    fill.style.width = (100 * count / top) + "%";
    bar.append(fill, el("span", { class: "count" }, String(count)));
    box.append(bar);
  }
}

async function loadValues() {
  const response = await fetch("/api/jobs/values");
  if (!response.ok) return;
  const values = await response.json();
  for (const name of window.DIRAC_FILTERS) {
    const select = $("f-" + name);
    const chosen = new Set([...select.selectedOptions].map((o) => o.value));
    select.replaceChildren();
    for (const value of Object.keys(values[name] || {}).sort()) {
      const option = el("option", { value }, value);
      option.selected = chosen.has(value);
      select.append(option);
    }
  }
  chart("chart-site", values.Site);
}

async function act(action) {
  const ids = [...state.selected];
  const box = $("action-result");
  if (!ids.length) { box.hidden = false; box.textContent = "Select jobs first."; return; }
  const response = await fetch("/api/jobs/action", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ action, ids }),
  });
  const data = await response.json();
  box.hidden = false;
  box.replaceChildren();
  box.className = "result " + (data.ok ? "ok" : "partial");
  box.append(el("div", {}, `${action}: done for ${(data.done || []).join(", ") || "no job"}`));
  for (const [id, why] of Object.entries(data.failed || {})) {
    box.append(el("div", { class: "failed", "data-job-id": id }, `job ${id}: ${why}`));
  }
  if (data.error) box.append(el("div", { class: "failed" }, data.error));
  state.selected.clear();
  $("selected-count").textContent = "0 selected";
  await loadJobs();
}

function setup() {
  for (const th of document.querySelectorAll("th.sortable")) {
    th.addEventListener("click", () => {
      state.dir = state.sort === th.dataset.sort && state.dir === "DESC" ? "ASC" : "DESC";
      state.sort = th.dataset.sort;
      state.start = 0;
      loadJobs();
    });
  }
  $("apply").addEventListener("click", () => { state.start = 0; loadJobs(); });
  $("reset").addEventListener("click", () => {
    for (const name of window.DIRAC_FILTERS) for (const o of $("f-" + name).options) o.selected = false;
    for (const key of ["JobID", "FromDate", "ToDate"]) $("f-" + key).value = "";
    state.start = 0;
    loadJobs();
  });
  $("f-JobID").addEventListener("keydown", (e) => { if (e.key === "Enter") { state.start = 0; loadJobs(); } });
  $("prev").addEventListener("click", () => { state.start = Math.max(0, state.start - state.limit); loadJobs(); });
  $("next").addEventListener("click", () => {
    if (state.start + state.limit < state.total) { state.start += state.limit; loadJobs(); }
  });
  $("page-size").addEventListener("change", (e) => { state.limit = Number(e.target.value); state.start = 0; loadJobs(); });
  $("select-all").addEventListener("change", (e) => {
    for (const box of document.querySelectorAll("input.pick")) {
      box.checked = e.target.checked;
      const id = Number(box.value);
      e.target.checked ? state.selected.add(id) : state.selected.delete(id);
    }
    $("selected-count").textContent = state.selected.size + " selected";
  });
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  loadValues();
  loadJobs();
  setInterval(() => { loadJobs(); loadValues(); }, window.DIRAC_REFRESH_MS);
}

setup();
