// Progressive enhancement only: every page works without this script.
// 1. Filter selects submit their form when changed (the Apply button stays for keyboard users).
// 2. A training-run page in progress refreshes itself every two seconds.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.filters select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  var run = document.querySelector("[data-refresh-seconds]");
  if (run) {
    var seconds = parseInt(run.getAttribute("data-refresh-seconds"), 10) || 2;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
});
