/* The fan chart as plain SVG: the price history, then the 5-95% and 25-75% bands and the
 * median of the forecast, placed on the dates the API returned (one slot per trading day).
 * The y scale is written on the <svg> (data-domain, data-range) so a test can map the band
 * edges back to prices. */
"use strict";

window.FanChart = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 720, H = 320, FAN_SHARE = 0.3;

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* points: [[x, y], ...] -> "M x,y L x,y ..." with 2 decimals. */
  function line(points) {
    return points.map((p, i) => (i ? "L" : "M") + p[0].toFixed(2) + "," + p[1].toFixed(2)).join(" ");
  }

  /* The upper edge left to right, then the lower edge right to left, closed. */
  function band(upper, lower) {
    return line(upper.concat(lower.slice().reverse())) + " Z";
  }

  /**
   * Draw into `container`.
   * history: [{date, close}], answer: the /v1/forecast answer, opts: {format, title, desc, keys}.
   */
  function draw(container, history, answer, opts) {
    const keys = opts.keys;  // {lo, q25, mid, q75, hi}: path-price keys present in the answer
    const path = answer.path;
    const anchor = { date: answer.as_of, close: answer.last_price };
    const hist = history.length && history[history.length - 1].date === answer.as_of
      ? history : history.concat([anchor]);
    const n = hist.length + path.length;
    const values = hist.map((p) => p.close);
    for (const p of path) values.push(p.prices[keys.lo], p.prices[keys.hi]);
    let lo = Math.min(...values), hi = Math.max(...values);
    const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
    lo -= pad; hi += pad;
    // The left margin fits the longest price label ("US$ 1.234,56"): ~7 units a character.
    const ticks = [0, 1, 2, 3, 4].map((k) => lo + ((hi - lo) * k) / 4);
    const longest = Math.max(...ticks.map((v) => opts.format(v).length));
    const M = { top: 12, right: 12, bottom: 28, left: Math.max(56, 12 + 7 * longest) };
    const top = M.top, bottom = H - M.bottom;
    const start = hist.length - 1;  // the last price: where the fan opens
    // The forecast gets a fixed share of the width, however long the history is: a 5-day fan
    // beside a year of prices would otherwise be a sliver.
    const plotW = W - M.left - M.right, split = M.left + plotW * (1 - FAN_SHARE);
    const x = (i) => (i <= start
      ? M.left + (start ? i / start : 1) * (split - M.left)
      : split + ((i - start) / path.length) * (W - M.right - split));
    const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);

    const svg = el("svg", {
      viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-title chart-desc",
      "data-domain": `${lo} ${hi}`, "data-range": `${bottom} ${top}`, focusable: "false",
    });
    svg.appendChild(el("title", { id: "chart-title" }, opts.title));
    svg.appendChild(el("desc", { id: "chart-desc" }, opts.desc));
    for (const v of ticks) {
      svg.appendChild(el("line", { class: "axis", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), "stroke-opacity": 0.35 }));
      svg.appendChild(el("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end" }, opts.format(v)));
    }
    const edge = (key) => [[x(start), y(answer.last_price)]].concat(
      path.map((p, i) => [x(start + 1 + i), y(p.prices[key])]));
    svg.appendChild(el("path", { class: "band-outer", d: band(edge(keys.hi), edge(keys.lo)),
      "data-upper": keys.hi, "data-lower": keys.lo }));
    if (keys.q25 && keys.q75) {
      svg.appendChild(el("path", { class: "band-inner", d: band(edge(keys.q75), edge(keys.q25)),
        "data-upper": keys.q75, "data-lower": keys.q25 }));
    }
    svg.appendChild(el("path", { class: "history", d: line(hist.map((p, i) => [x(i), y(p.close)])) }));
    svg.appendChild(el("path", { class: "median", d: line(edge(keys.mid)), "data-key": keys.mid }));
    // Date labels: the first history day, the as-of day and the last forecast day.
    const labels = [[0, hist[0].date, "start"], [start, answer.as_of, "middle"],
      [n - 1, path[path.length - 1].date, "end"]];
    if (start === 0) labels.shift();
    for (const [i, date, anchorAt] of labels) {
      svg.appendChild(el("text", { x: x(i), y: H - 8, "text-anchor": anchorAt }, opts.date(date)));
    }
    svg.appendChild(el("line", { class: "axis", x1: x(start), x2: x(start), y1: top, y2: bottom, "stroke-dasharray": "2 3" }));
    container.replaceChildren(svg);
    return svg;
  }

  return { draw };
})();
