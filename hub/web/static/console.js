// Live parts of the consoles: an element with data-stream listens to server-sent events from that URL.
// data-mode="replace": each "rows" event replaces its content (already escaped, rendered by the server);
// data-mode="append": each "record" event adds one row, and a live region announces it.
"use strict";
document.querySelectorAll("[data-stream]").forEach(function (target) {
  var source = new EventSource(target.dataset.stream);
  var status = document.getElementById("timeline-status");
  source.addEventListener("rows", function (event) { target.innerHTML = event.data; });
  source.addEventListener("record", function (event) {
    var template = document.createElement("template");
    template.innerHTML = event.data.trim();
    var row = template.content.firstElementChild;
    if (row && !document.getElementById(row.id)) {
      target.appendChild(row);
      if (status) { status.textContent = row.id.replace("leaf-", "#"); }
    }
  });
  window.addEventListener("pagehide", function () { source.close(); });
});
