// The console's only script: live queue updates over server-sent events, and waiting times that tick.
(function () {
  "use strict";
  function tick() {
    document.querySelectorAll("td.waiting[data-created]").forEach(function (cell) {
      var created = Date.parse(cell.getAttribute("data-created"));
      if (isNaN(created)) return;
      var s = Math.max(0, Math.floor((Date.now() - created) / 1000));
      cell.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
    });
  }
  function live() {
    var table = document.querySelector("[data-events]");
    if (!table || !window.EventSource) return;
    var source = new EventSource(table.getAttribute("data-events"));
    var first = true;
    source.addEventListener("queue", function () {
      if (first) { first = false; return; }  // the page was rendered with this version
      if (table.getAttribute("data-reload")) { window.location.reload(); return; }
      fetch(table.getAttribute("data-live"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          document.getElementById("queue-rows").innerHTML = html;
          tick();
          document.body.setAttribute("data-queue-updated", String(Date.now()));
        })
        .catch(function () {});
    });
  }
  tick();
  setInterval(tick, 1000);
  live();
})();
