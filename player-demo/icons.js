// Reaction icons as inline SVG (emoji render as empty boxes where no emoji font is
// installed, e.g. headless Chromium on Debian). Drawn for onair on a 24×24 grid.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const SHAPES = {
    like: { color: "#3b9cff", parts: [
      ["path", { d: "M2 10h4v11H2z" }],
      ["path", { d: "M8 21h9.2c.9 0 1.7-.6 1.9-1.5l1.8-7.4c.3-1.3-.7-2.6-2-2.6H14l.9-4.2c.2-1-.5-2-1.5-2.3L12.6 3 8 10z" }]] },
    celebrate: { color: "#ffb23b", parts: [
      ["path", { d: "M12 2l2.6 5.6 6.1.7-4.5 4.2 1.2 6L12 15.6l-5.4 2.9 1.2-6L3.3 8.3l6.1-.7z" }],
      ["circle", { cx: "4", cy: "20", r: "1.5" }], ["circle", { cx: "20", cy: "20", r: "1.5" }],
      ["circle", { cx: "12", cy: "21.5", r: "1.2" }]] },
    love: { color: "#ff4d6d", parts: [
      ["path", { d: "M12 21s-7.4-4.5-9.4-9C1.1 8.6 3.2 5 6.6 5c2.1 0 3.6 1.2 4.4 2.6h2C13.8 6.2 15.3 5 17.4 5c3.4 0 5.5 3.6 4 7-2 4.5-9.4 9-9.4 9z" }]] },
    insightful: { color: "#ffd84d", parts: [
      ["path", { d: "M12 2a7 7 0 0 0-4 12.7V17a1 1 0 0 0 1 1h6a1 1 0 0 0 1-1v-2.3A7 7 0 0 0 12 2z" }],
      ["path", { d: "M9 19.5h6V21a1 1 0 0 1-1 1h-4a1 1 0 0 1-1-1z" }]] },
    curious: { color: "#a78bfa", parts: [
      ["circle", { cx: "12", cy: "12", r: "10" }],
      ["path", { d: "M9.2 9.3a2.9 2.9 0 1 1 4 2.6c-.8.4-1.2 1-1.2 1.9v.6", fill: "none", stroke: "#111",
                 "stroke-width": "2", "stroke-linecap": "round" }],
      ["circle", { cx: "12", cy: "17.4", r: "1.2", fill: "#111" }]] },
    pin: { color: "#4aa8a8", parts: [
      ["path", { d: "M15 2l7 7-2 1-3.5 3.5.5 4.5-2 2-4-4-5.5 5.5-1-1L10 15l-4-4 2-2 4.5.5L16 6z" }]] },
  };

  // A fresh <svg> for `name` (null for an unknown one), `size` pixels square.
  function icon(name, size) {
    const shape = SHAPES[name];
    if (!shape) return null;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size || 20));
    svg.setAttribute("height", String(size || 20));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.classList.add("icon", "icon-" + name);
    for (const [tag, attrs] of shape.parts) {
      const el = document.createElementNS(SVG, tag);
      el.setAttribute("fill", shape.color);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      svg.append(el);
    }
    return svg;
  }

  window.onairIcons = { icon, names: Object.keys(SHAPES) };
})();
