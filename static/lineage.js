/* Lineage page: lay the graph out left to right by column and draw it with plotly; clicking a node opens it. */
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("lineage-graph");
    var data = document.getElementById("lineage-data");
    if (!holder || !data || !window.Plotly) { return; }
    var graph = JSON.parse(data.textContent);
    var focused = graph.nodes.some(function (n) { return n.is_focus; });
    var byColumn = {};
    graph.nodes.forEach(function (n) { (byColumn[n.column] = byColumn[n.column] || []).push(n); });
    var pos = {};
    var tallest = 1;
    Object.keys(byColumn).forEach(function (c) { tallest = Math.max(tallest, byColumn[c].length); });
    Object.keys(byColumn).forEach(function (c) {
      var col = byColumn[c];
      col.forEach(function (n, i) {
        pos[n.id] = { x: Number(c), y: (tallest - 1) / 2 - (col.length - 1) / 2 + i };
      });
    });
    var colors = { entity: "#7c3aed", data_source: "#0891b2", feature_view: "#2f5bd3", feature_service: "#d97706", model: "#059669" };
    function lit(n) { return !focused || n.is_focus || n.upstream_of_focus || n.downstream_of_focus; }
    var ex = [], ey = [], hx = [], hy = [];
    var litIds = {};
    graph.nodes.forEach(function (n) { if (lit(n)) { litIds[n.id] = true; } });
    graph.edges.forEach(function (e) {
      var a = pos[e.source], b = pos[e.target];
      if (!a || !b) { return; }
      var target = (focused && litIds[e.source] && litIds[e.target]) ? [hx, hy] : [ex, ey];
      target[0].push(a.x, b.x, null);
      target[1].push(a.y, b.y, null);
    });
    var traces = [
      { x: ex, y: ey, mode: "lines", line: { color: focused ? "#e3e6eb" : "#b8c2dc", width: 1.5 }, hoverinfo: "skip", showlegend: false },
      { x: hx, y: hy, mode: "lines", line: { color: "#2f5bd3", width: 2.5 }, hoverinfo: "skip", showlegend: false },
    ];
    Object.keys(colors).forEach(function (kind) {
      var nodes = graph.nodes.filter(function (n) { return n.kind === kind; });
      if (!nodes.length) { return; }
      traces.push({
        x: nodes.map(function (n) { return pos[n.id].x; }),
        y: nodes.map(function (n) { return pos[n.id].y; }),
        text: nodes.map(function (n) { return n.name; }),
        customdata: nodes.map(function (n) { return n.url; }),
        hovertext: nodes.map(function (n) { return kind.replace("_", " ") + (n.subkind ? " (" + n.subkind + ")" : "") + ": " + n.name; }),
        hoverinfo: "text",
        mode: "markers+text",
        textposition: "bottom center",
        name: kind.replace("_", " "),
        marker: {
          size: nodes.map(function (n) { return n.is_focus ? 22 : 14; }),
          color: colors[kind],
          opacity: nodes.map(function (n) { return lit(n) ? 1 : 0.25; }),
          line: { width: nodes.map(function (n) { return n.is_focus ? 3 : 0; }), color: "#111" },
        },
      });
    });
    var height = Math.max(420, tallest * 70 + 120);
    Plotly.newPlot(holder, traces, {
      height: height,
      margin: { l: 20, r: 20, t: 20, b: 20 },
      xaxis: { visible: false, range: [-0.5, 4.5] },
      yaxis: { visible: false, autorange: "reversed" },
      legend: { orientation: "h" },
      hovermode: "closest",
      plot_bgcolor: "#fff",
    }, { displayModeBar: false, responsive: true });
    holder.on("plotly_click", function (ev) {
      var url = ev.points && ev.points[0] && ev.points[0].customdata;
      if (url) { window.location.href = url; }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
