/* otel_usage dashboard: fetches the summary of the store and draws it with Chart.js (shipped alongside). */
(function () {
  "use strict";
  var body = document.body;
  var charts = {};
  var palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

  function label(value) { return value === null || value === undefined ? "(none)" : String(value); }
  function ms(value) { return value === null || value === undefined ? null : Math.round(value * 100000) / 100; }

  function draw(id, config) {
    if (charts[id]) { charts[id].destroy(); }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new Chart(document.getElementById(id), config);
  }

  function bars(id, rows, field, value, title) {
    draw(id, {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return label(r[field]); }),
        datasets: [{ label: title, data: rows.map(function (r) { return r[value]; }), backgroundColor: palette[0] }]
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } } }
    });
  }

  function figures(total) {
    var box = document.getElementById("figures");
    box.textContent = "";
    var items = total ? [
      ["hits", total.hits], ["users", total.users], ["visitors", total.visitors],
      ["transfer (bytes)", total.transfer], ["errors", total.errors],
      ["error rate", (total.error_rate * 100).toFixed(1) + "%"],
      ["p50 ms", ms(total.duration_p50)], ["p95 ms", ms(total.duration_p95)], ["p99 ms", ms(total.duration_p99)]
    ] : [["hits", 0]];
    items.forEach(function (item) {
      var div = document.createElement("div");
      var value = document.createElement("strong");
      value.textContent = item[1] === null ? "-" : String(item[1]);
      var name = document.createElement("span");
      name.textContent = item[0];
      div.appendChild(value);
      div.appendChild(name);
      box.appendChild(div);
    });
  }

  function slowest(rows) {
    var tbody = document.querySelector("#slowest tbody");
    tbody.textContent = "";
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      [r.start, label(r.endpoint) + " " + label(r.path), label(r.user), label(r.http_status || r.status), ms(r.duration)]
        .forEach(function (text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); });
      var td = document.createElement("td");
      var a = document.createElement("a");
      a.href = body.dataset.trace.replace("TRACE", r.trace_id);
      a.textContent = r.trace_id.slice(0, 12) + "…";
      td.appendChild(a);
      tr.appendChild(td);
      tbody.appendChild(tr);
    });
  }

  function render(data) {
    var buckets = data.traffic.map(function (r) { return r[data.per]; });
    figures(data.total);
    draw("traffic", {
      type: "line",
      data: { labels: buckets, datasets: [
        { label: "hits", data: data.traffic.map(function (r) { return r.hits; }), borderColor: palette[0], backgroundColor: palette[0] },
        { label: "users", data: data.traffic.map(function (r) { return r.users; }), borderColor: palette[1], backgroundColor: palette[1] },
        { label: "errors", data: data.traffic.map(function (r) { return r.errors; }), borderColor: palette[2], backgroundColor: palette[2] }
      ] }
    });
    draw("latency", {
      type: "line",
      data: { labels: buckets, datasets: ["p50", "p95", "p99"].map(function (p, i) {
        return { label: p, data: data.traffic.map(function (r) { return ms(r["duration_" + p]); }), borderColor: palette[i + 3], backgroundColor: palette[i + 3] };
      }) }
    });
    bars("routes", data.routes, "route", "hits", "hits");
    bars("users", data.users, "user", "hits", "hits");
    draw("browsers", {
      type: "doughnut",
      data: { labels: data.browsers.map(function (r) { return label(r.browser); }),
              datasets: [{ data: data.browsers.map(function (r) { return r.hits; }), backgroundColor: palette }] }
    });
    bars("errors", data.errors, "endpoint", "errors", "errors");
    slowest(data.slowest);
    document.getElementById("message").textContent = data.total ? "" : "No usage log in this window.";
    body.dataset.rendered = String(data.total ? data.total.hits : 0);
  }

  function load() {
    var since = document.getElementById("since").value;
    body.dataset.rendered = "";
    fetch(body.dataset.summary + "?since=" + encodeURIComponent(since), { credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) { throw new Error(data.error || response.statusText); }
          return data;
        });
      })
      .then(render)
      .catch(function (error) {
        document.getElementById("message").textContent = "Could not load the usage summary: " + error.message;
        body.dataset.rendered = "error";
      });
  }

  var params = new URLSearchParams(window.location.search);
  if (params.get("since")) { document.getElementById("since").value = params.get("since"); }
  document.getElementById("since").addEventListener("change", load);
  load();
})();
