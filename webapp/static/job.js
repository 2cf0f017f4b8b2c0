// A job's page: status, attributes and history re-read every DIRAC_REFRESH_MS from
// /api/jobs/<id>, without reloading the page; the output sandbox's download link
// appears once the job has uploaded it.
"use strict";
const badge = document.getElementById("job-status");
async function refresh() {
  const response = await fetch("/api/jobs/" + badge.dataset.jobId);
  if (!response.ok) return;
  const job = await response.json();
  badge.textContent = job.Status;
  document.getElementById("job-minor").textContent = job.MinorStatus || "";
  for (const cell of document.querySelectorAll("#attributes td[data-attr]")) {
    const value = (job.attributes || {})[cell.dataset.attr];
    cell.textContent = value === null || value === undefined ? "" : value;
  }
  const body = document.querySelector("#history tbody");
  body.replaceChildren();
  for (const item of job.history || []) {
    const tr = document.createElement("tr");
    for (const value of item) {
      const td = document.createElement("td");
      td.textContent = value === null || value === undefined ? "" : value;
      tr.append(td);
    }
    body.append(tr);
  }
  showSandbox(job.sandbox || {links: [], message: ""});
}
let shownSandbox = null;
function showSandbox(sandbox) {
  const key = JSON.stringify(sandbox);
  if (key === shownSandbox) return;  // unchanged: leave the link alone (a click may be on it)
  shownSandbox = key;
  const box = document.getElementById("sandbox");
  box.replaceChildren();
  sandbox.links.forEach((link, n) => {
    const p = document.createElement("p");
    const a = document.createElement("a");
    a.className = "button";
    a.href = link;
    a.setAttribute("download", "");
    a.textContent = "Download the output sandbox" + (n ? " (" + (n + 1) + ")" : "") + " (tar)";
    p.append(a);
    box.append(p);
  });
  if (sandbox.message) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = sandbox.message;
    box.append(p);
  }
}
setInterval(refresh, window.DIRAC_REFRESH_MS);
