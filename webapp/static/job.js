// A job's page: status, attributes and history re-read every DIRAC_REFRESH_MS from
// /api/jobs/<id>, without reloading the page.
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
}
setInterval(refresh, window.DIRAC_REFRESH_MS);
