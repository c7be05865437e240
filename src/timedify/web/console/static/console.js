// The overview's chart (uPlot, vendored) and its refresh. No inline script: the page's CSP
// is `default-src 'self'`, so this file is the page's only code besides uPlot.
"use strict";

(function () {
  var box = document.getElementById("chart");
  if (!box || typeof uPlot === "undefined") {
    return;
  }
  var plot = null;
  var refreshSeconds = Number(box.dataset.refreshSeconds || "30");

  function options(width) {
    return {
      width: width,
      height: 300,
      series: [
        {},
        { label: "received", stroke: "#3056d3", width: 2 },
        { label: "processed", stroke: "#137333", width: 2 },
        { label: "failed", stroke: "#c5221f", width: 2 }
      ],
      axes: [{}, { label: "per 5 min" }]
    };
  }

  function draw(doc) {
    var data = [doc.x, doc.received, doc.processed, doc.failed];
    if (plot === null) {
      plot = new uPlot(options(box.clientWidth - 16), data, box);
    } else {
      plot.setData(data);
    }
    box.dataset.drawn = "true";
    box.dataset.points = String(doc.x.length);
  }

  function load() {
    fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("chart data: HTTP " + response.status);
        }
        return response.json();
      })
      .then(draw)
      .catch(function (error) {
        box.dataset.error = String(error);
      });
  }

  load();
  // Auto-refresh: the chart's data every interval, the whole page (figures, checks) every
  // fourth one; not while the tab is hidden.
  var ticks = 0;
  setInterval(function () {
    if (document.hidden) {
      return;
    }
    ticks += 1;
    if (ticks % 4 === 0) {
      window.location.reload();
    } else {
      load();
    }
  }, refreshSeconds * 1000);
})();
