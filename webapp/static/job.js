// A job's page: its status line is re-read every DIRAC_REFRESH_MS from /api/jobs/<id>.
"use strict";
const badge = document.getElementById("job-status");
async function refresh() {
  const response = await fetch("/api/jobs/" + badge.dataset.jobId);
  if (!response.ok) return;
  const row = await response.json();
  badge.textContent = row.Status;
  document.getElementById("job-minor").textContent = row.MinorStatus || "";
}
setInterval(refresh, window.DIRAC_REFRESH_MS);
