"""The HTML page's fixed parts: styles (screen and print) and the sorting script, all inline."""

from __future__ import annotations

from string import Template

# Nothing may be fetched: the policy forbids every network source; styles and the script are inline.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
:root { --fg:#1d1d1f; --muted:#5a5a60; --line:#d7d7dc; --best:#2e7d32; --base:#8a5300;
  --up:#1b5e20; --down:#b71c1c; --bg-alt:#f5f6f8; --focus:#1a56db; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); margin: 0 auto; padding: 1rem 1.25rem 3rem; max-width: 1280px; }
h1 { font-size: 1.5rem; margin: .25rem 0; } h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; }
.meta, .legend, .muted { color: var(--muted); }
.skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: .5rem; background: #fff; }
nav a { margin-right: 1rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid var(--line); text-align: right;
  vertical-align: top; white-space: nowrap; }
th[scope=row], th.model, td.text { text-align: left; }
thead th { background: var(--bg-alt); position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #fafafb; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: .15rem .2rem;
  cursor: pointer; color: inherit; text-align: inherit; }
th button::after { content: " \\2195"; color: var(--muted); font-weight: 400; }
th[aria-sort=ascending] button::after { content: " \\2191"; color: var(--fg); }
th[aria-sort=descending] button::after { content: " \\2193"; color: var(--fg); }
button:focus-visible, a:focus-visible, .table-wrap:focus-visible, summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 1px; }
.metric { display: block; font-weight: 400; font-size: .78rem; color: var(--muted);
  white-space: normal; overflow-wrap: break-word; max-width: 8.5rem; margin-left: auto; }
th, td { padding: .35rem .5rem; }
td .v { font-variant-numeric: tabular-nums; color: inherit; text-decoration-color: var(--line); }
td .se, td .d { display: block; font-size: .78rem; color: var(--muted); font-variant-numeric: tabular-nums; }
td .d.up { color: var(--up); } td .d.down { color: var(--down); }
td.best { background: #e8f5e9; } td.best .v { font-weight: 700; color: var(--best); }
.mark { color: var(--best); margin-left: .2rem; }
.badge { font-size: .72rem; border: 1px solid var(--base); color: var(--base); border-radius: 3px;
  padding: 0 .25rem; margin-left: .35rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: .8rem; color: var(--muted); }
details { border-bottom: 1px solid var(--line); padding: .3rem 0; }
summary { cursor: pointer; } summary code { font-size: .85rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .5rem 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.metrics { width: auto; min-width: 50%; margin: .25rem 0 .75rem; }
.notes li { color: var(--down); }
.controls { margin: .5rem 0; }
@media print {
  @page { margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  nav, .skip, .controls { display: none; }
  .table-wrap { overflow: visible; border: 0; }
  thead th { position: static; }
  th button { padding: 0; } th button::after { content: none; }
  th[aria-sort=ascending] button::after, th[aria-sort=descending] button::after { content: none; }
  td.best { background: none; }
  .charts { display: block; } figure { break-inside: avoid; margin-bottom: 6mm; border: 0; }
  details { break-inside: avoid; } a { color: inherit; text-decoration: none; }
  tr { break-inside: avoid; }
}
"""

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("matrix-table");
  var live = document.getElementById("sort-status");
  if (table) {
    var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var body = table.tBodies[0];
    heads.forEach(function (th, index) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "number";
        var current = th.getAttribute("aria-sort");
        var dir;
        if (current === "ascending") { dir = "descending"; }
        else if (current === "descending") { dir = "ascending"; }
        else { dir = numeric && th.getAttribute("data-higher") !== "false" ? "descending" : "ascending"; }
        heads.forEach(function (other) {
          if (other.hasAttribute("aria-sort")) { other.setAttribute("aria-sort", "none"); }
        });
        th.setAttribute("aria-sort", dir);
        var key = function (row) {
          var raw = row.cells[index].getAttribute("data-value");
          if (!numeric) { return raw; }
          var n = raw === null || raw === "" ? NaN : parseFloat(raw);
          return isFinite(n) ? n : null;
        };
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (x === null && y === null) { return 0; }
          if (x === null) { return 1; }
          if (y === null) { return -1; }
          var r = numeric ? x - y : x.localeCompare(y);
          return dir === "ascending" ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
        if (live) { live.textContent = "Sorted by " + button.getAttribute("data-label") + ", " + dir + "."; }
      });
    });
  }
  var details = function () { return Array.prototype.slice.call(document.querySelectorAll("details")); };
  var toggle = document.getElementById("expand-all");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-pressed") !== "true";
      details().forEach(function (d) { d.open = open; });
      toggle.setAttribute("aria-pressed", open ? "true" : "false");
      toggle.textContent = open ? "Collapse all jobs" : "Expand all jobs";
    });
  }
  window.addEventListener("beforeprint", function () {
    details().forEach(function (d) { d.setAttribute("data-was-open", d.open ? "1" : "0"); d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    details().forEach(function (d) { d.open = d.getAttribute("data-was-open") === "1"; });
  });
})();
"""

PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="generator" content="evalport $version">
<title>$title</title>
<style>$style</style>
</head>
<body>
<a class="skip" href="#matrix">Skip to the comparison table</a>
<header>
<h1>$title</h1>
<p class="meta">$summary</p>
<nav aria-label="Sections">
<a href="#matrix">Comparison</a><a href="#charts">Charts</a><a href="#jobs">Jobs</a>$disagreements_link
</nav>
</header>
<main>
$notes
<section id="matrix" aria-labelledby="matrix-h">
<h2 id="matrix-h">Comparison</h2>
<p class="legend">$legend</p>
<p id="sort-status" class="sr-only" aria-live="polite"></p>
$matrix
</section>
<section id="charts" aria-labelledby="charts-h">
<h2 id="charts-h">Charts</h2>
<p class="legend">Headline score per model; error bars show &plusmn; one standard error where it is known.
Green: best on the task$baseline_legend.</p>
<div class="charts">
$charts
</div>
</section>
<section id="jobs" aria-labelledby="jobs-h">
<h2 id="jobs-h">Jobs</h2>
<div class="controls">
<button type="button" id="expand-all" aria-pressed="false">Expand all jobs</button>
</div>
$jobs
</section>
$disagreements
</main>
<script>$script</script>
</body>
</html>
"""
)
