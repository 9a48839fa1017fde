/* otel_usage dashboard, trace page: places the call and timer bars (kept out of inline styles for the CSP). */
(function () {
  "use strict";
  document.querySelectorAll(".bar").forEach(function (bar) {
    bar.style.left = bar.dataset.left + "%";
    bar.style.width = bar.dataset.width + "%";
  });
  document.body.dataset.rendered = String(document.querySelectorAll(".bar").length);
})();
