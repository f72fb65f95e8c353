// Small live charts in plain SVG: one <figure class="chart"> per series, the last
// 60 samples drawn as a polyline scaled to their maximum. No library, no canvas.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 120, HEIGHT = 40, KEEP = 60;

  function Chart(parent, id, label, format) {
    this.samples = [];
    this.format = format;
    this.figure = document.createElement("figure");
    this.figure.className = "chart";
    this.figure.id = "chart-" + id;
    const caption = document.createElement("figcaption");
    const name = document.createElement("span");
    name.textContent = label;
    this.value = document.createElement("span");
    this.value.className = "value";
    this.value.textContent = "–";
    caption.append(name, this.value);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + HEIGHT);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("class", "baseline");
    base.setAttribute("x1", "0"); base.setAttribute("x2", String(WIDTH));
    base.setAttribute("y1", String(HEIGHT)); base.setAttribute("y2", String(HEIGHT));
    this.line = document.createElementNS(SVG, "polyline");
    this.line.setAttribute("points", "");
    svg.append(base, this.line);
    this.figure.append(caption, svg);
    parent.append(this.figure);
  }

  // A null value (no figure yet) is drawn as a gap at zero and shown as "–".
  Chart.prototype.push = function (value) {
    const number = typeof value === "number" && isFinite(value) ? value : null;
    this.samples.push(number === null ? 0 : number);
    if (this.samples.length > KEEP) this.samples.shift();
    this.value.textContent = number === null ? "–" : this.format(number);
    const top = Math.max(1e-9, ...this.samples) * 1.1;
    const step = WIDTH / (KEEP - 1);
    const offset = KEEP - this.samples.length;
    this.line.setAttribute("points", this.samples.map((v, i) =>
      ((offset + i) * step).toFixed(1) + "," + (HEIGHT - (v / top) * HEIGHT).toFixed(1)).join(" "));
  };

  Chart.prototype.reset = function () {
    this.samples = [];
    this.line.setAttribute("points", "");
    this.value.textContent = "–";
  };

  window.OnairCharts = { Chart };
})();
