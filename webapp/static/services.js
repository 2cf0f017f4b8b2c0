// The services page: /api/services every DIRAC_REFRESH_MS (at least 5 s: each refresh pings).
"use strict";
const cells = ["service", "messages", "consumers", "ping_ms", "answered", "requests", "errors", "rate", "status"];
async function refresh() {
  const response = await fetch("/api/services");
  if (response.status === 401) { window.location = "/login"; return; }
  const data = await response.json();
  const body = document.querySelector("#services tbody");
  body.replaceChildren();
  for (const row of data.services) {
    const tr = document.createElement("tr");
    tr.dataset.service = row.service;
    row.answered = row.counted_by || "";
    row.ping_ms = row.ping_ms === undefined ? "" : row.ping_ms + " ms";
    row.status = row.error ? row.error : (row.consumers ? "OK" : "no worker");
    for (const key of cells) {
      const td = document.createElement("td");
      td.className = "col-" + key;
      td.textContent = row[key] === undefined || row[key] === null ? "" : row[key];
      tr.append(td);
    }
    tr.classList.toggle("bad", Boolean(row.error) || !row.consumers);
    body.append(tr);
  }
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}
refresh();
setInterval(refresh, Math.max(5000, window.DIRAC_REFRESH_MS));
