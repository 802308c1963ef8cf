/* Operations charts, drawn with plotly (vendored; pages that show a chart load it through
   templates/_plotly.html). A chart is an element <div data-chart="KIND" data-chart-data="ID">, where ID is the
   json_script holding its data: no inline script (the Content-Security-Policy forbids them). Charts are drawn
   when the page has loaded and whenever htmx swaps new content in (a job page polling its status). */
(function () {
  "use strict";
  var RED = "#b3261e", GREEN = "#1b7a3a", BLUE = "#2f5bd3", GREY = "#999";
  var CONFIG = { displaylogo: false, responsive: true };

  var KINDS = {
    // freshness page: age / TTL per online view, the TTL line at 1
    freshness: function (el, d) {
      if (d.views.length === 0) { return; }
      Plotly.newPlot(el, [{
        x: d.views, y: d.ratio, type: "bar", text: d.state,
        marker: { color: d.state.map(function (s) { return s === "stale" ? RED : (s === "fresh" ? GREEN : GREY); }) },
      }], {
        margin: { t: 10 }, yaxis: { title: "age / TTL" },
        shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1, line: { dash: "dot", color: RED } }],
      }, CONFIG);
    },
    // a view's ledger: rows written per run, and throughput
    ledger: function (el, d) {
      if (d.x.length === 0) { return; }
      Plotly.newPlot(el, [
        { x: d.x, y: d.rows, type: "bar", name: "rows written", text: d.status,
          marker: { color: d.status.map(function (s) { return s === "failed" ? RED : BLUE; }) } },
        { x: d.x, y: d.throughput, type: "scatter", mode: "lines+markers", name: "rows/s", yaxis: "y2" },
      ], { margin: { t: 10 }, yaxis: { title: "rows" }, yaxis2: { title: "rows/s", overlaying: "y", side: "right" } },
      CONFIG);
    },
    // a skew check: mismatch rate per feature
    skew: function (el, d) {
      Plotly.newPlot(el, [{
        x: d.map(function (f) { return f.feature; }), y: d.map(function (f) { return f.mismatch_rate; }),
        type: "bar", marker: { color: RED },
      }], { margin: { t: 10 }, yaxis: { title: "mismatch rate", range: [0, 1] } }, CONFIG);
    },
    // one feature's offline histogram (bin centres, or the most frequent values)
    histogram: function (el, h) {
      if (!h.counts) { return; }  // no histogram: its values are hidden from this user
      var x = h.edges ? h.edges.slice(0, -1).map(function (e, i) { return (e + h.edges[i + 1]) / 2; }) : h.values;
      Plotly.newPlot(el, [{ x: x, y: h.counts, type: "bar", marker: { color: BLUE } }],
        { margin: { t: 10, b: 40 }, yaxis: { title: "rows" } }, CONFIG);
    },
  };

  function drawIn(root) {
    if (!window.Plotly || !root.querySelectorAll) { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var draw = KINDS[el.dataset.chart];
      var source = document.getElementById(el.dataset.chartData);
      if (!draw || !source || el.dataset.chartDrawn) { return; }
      el.dataset.chartDrawn = "true";
      draw(el, JSON.parse(source.textContent));
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawIn(document); });
  document.addEventListener("htmx:load", function (ev) { drawIn(ev.detail.elt); });
})();
