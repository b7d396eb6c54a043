// The dashboard's page: reads Telegram's launch parameters from the URL's fragment (or from
// Telegram's own script, when present), then shows each view the server renders, sending
// the raw tgWebAppData with every request. Plain JavaScript, nothing loaded from elsewhere.
(function () {
  "use strict";
  var STORE = "cspbot.launch";
  var SVG = "http://www.w3.org/2000/svg";
  var main = null;

  function launch() {
    var fragment = new URLSearchParams(location.hash.slice(1));
    var kept = {};
    try { kept = JSON.parse(sessionStorage.getItem(STORE) || "{}"); } catch (e) { kept = {}; }
    var telegram = window.Telegram && window.Telegram.WebApp;
    var found = {
      data: fragment.get("tgWebAppData") || (telegram && telegram.initData) || kept.data || "",
      theme: fragment.get("tgWebAppThemeParams") || kept.theme || ""
    };
    // Kept for the tab's life: a reload or a view's own URL has no fragment.
    try { sessionStorage.setItem(STORE, JSON.stringify(found)); } catch (e) { /* private mode */ }
    return found;
  }

  function luminance(hex) {
    var m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
    if (!m) { return null; }
    var n = parseInt(m[1], 16);
    var channels = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map(function (c) {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  }

  // The chat's theme decides light or dark; the page keeps its own palette, whose
  // contrast is checked in both, rather than the theme's colours.
  function applyTheme(raw) {
    var params = {};
    try { params = JSON.parse(raw || "{}"); } catch (e) { params = {}; }
    var light = luminance(params.bg_color);
    var dark = light === null
      ? window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches
      : light < 0.2;
    document.documentElement.dataset.theme = dark ? "dark" : "light";
  }

  var found = launch();
  applyTheme(found.theme);

  function viewFromLocation() {
    return new URLSearchParams(location.search).get("v") || "overview";
  }

  function show(view, response, html, push) {
    main.innerHTML = html;
    main.dataset.status = String(response.status);
    var heading = main.querySelector("[data-title]");
    document.title = (heading ? heading.textContent : "Dashboard") + " – CSP dashboard";
    drawCharts(main);
    showNeeded(main);
    // When each view is on screen, for benchmarks/bench_dashboard.py's first render.
    if (window.performance && performance.mark) { performance.mark("cspbot-view"); }
    if (push) {
      history.pushState({ view: view }, "", "?v=" + encodeURI(view) + location.hash);
    }
    main.focus();
  }

  function request(view, options) {
    options = options || {};
    options.headers = options.headers || {};
    options.headers.Authorization = "tma " + found.data;
    main.setAttribute("aria-busy", "true");
    return fetch("api/" + view, options).then(function (response) {
      return response.text().then(function (html) {
        main.removeAttribute("aria-busy");
        return { response: response, html: html };
      });
    }, function () {
      main.removeAttribute("aria-busy");
      return { response: { status: 0 }, html: "<h1 data-title>No connection</h1><p>The dashboard could not reach the bot. Try again in a moment.</p>" };
    });
  }

  function load(view, push) {
    return request(view).then(function (got) { show(view, got.response, got.html, push); });
  }

  function send(form, submitter) {
    var fields = new FormData(form);
    if (submitter && submitter.name) { fields.append(submitter.name, submitter.value); }
    var body = new URLSearchParams(fields);
    var view = form.dataset.view;
    if ((form.getAttribute("method") || "get").toLowerCase() === "get") {
      var query = body.toString();
      return load(view + (query ? "?" + query : ""), true);
    }
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = true; });
    return request(view, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).then(function (got) { show(view, got.response, got.html, false); });
  }

  // The mitigation and the forecast are asked for only when the chosen status needs them.
  function showNeeded(root) {
    var form = root.querySelector("form.update");
    if (!form) { return; }
    var update = function () {
      var checked = form.querySelector("input[name=status]:checked");
      var status = checked ? checked.value : "";
      Array.prototype.forEach.call(form.querySelectorAll("[data-needs]"), function (part) {
        part.hidden = part.dataset.needs.split(" ").indexOf(status) < 0;
      });
    };
    form.addEventListener("change", update);
    update();
  }

  function svg(name, attributes, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  // A stacked bar per row from the JSON the server put beside the chart (its table says
  // the same in text, for those who cannot see the chart).
  function drawBars(figure, data) {
    var rowHeight = 26, labelWidth = 70, width = 340;
    var height = data.bars.length * rowHeight + 8;
    var most = Math.max.apply(null, data.bars.map(function (bar) {
      return bar.values.reduce(function (a, b) { return a + b; }, 0);
    }).concat([1]));
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": data.title + ": the table below gives the figures" });
    data.bars.forEach(function (bar, row) {
      var y = row * rowHeight + 4, x = labelWidth;
      var label = svg("text", { x: 0, y: y + 15 }, chart);
      label.textContent = bar.label;
      bar.values.forEach(function (value, index) {
        if (!value) { return; }
        var w = value / most * (width - labelWidth - 4);
        var part = svg("rect", { x: x, y: y, width: w, height: rowHeight - 8, "class": "bar-" + data.statuses[index] }, chart);
        svg("title", {}, part).textContent = bar.label + ": " + value + " " + data.labels[index];
        x += w;
      });
    });
    figure.appendChild(chart);
    var legend = document.createElement("ul");
    legend.className = "legend";
    data.labels.forEach(function (label, index) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch bar-" + data.statuses[index];
      swatch.setAttribute("aria-hidden", "true");
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(label));
      legend.appendChild(item);
    });
    figure.appendChild(legend);
  }

  // Round steps (1, 2 or 5 times a power of ten) spanning [low, high] in about `count`.
  function ticks(low, high, count) {
    var rough = (high - low) / count;
    var power = Math.pow(10, Math.floor(Math.log(rough) / Math.LN10));
    var step = [1, 2, 5, 10].map(function (m) { return m * power; })
      .filter(function (s) { return s >= rough; })[0];
    var found = [];
    for (var v = Math.ceil(low / step) * step; v <= high + step / 1e6; v += step) {
      found.push(Number(v.toFixed(6)));
    }
    return found;
  }

  function legendItem(legend, kind, label) {
    var item = document.createElement("li");
    var swatch = document.createElement("span");
    swatch.className = "line-swatch " + kind;
    swatch.setAttribute("aria-hidden", "true");
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(label));
    legend.appendChild(item);
  }

  // A measure's trend: its figures as a line with a dot per period, the target as steps
  // (each holds until the next) and the baseline as a dotted level, each in a line style of
  // its own as well as a colour. The table below the chart gives the same in text.
  function drawTrend(figure, data) {
    var width = 340, height = 210, left = 46, right = 10, top = 10, bottom = 40;
    var values = data.figures.concat(data.targets, data.baseline ? [data.baseline] : [])
      .map(function (p) { return p.value; });
    if (!values.length || !data.periods.length) { return; }
    var low = Math.min.apply(null, values), high = Math.max.apply(null, values);
    var pad = (high - low) * 0.1 || Math.abs(high) * 0.1 || 1;
    low -= pad; high += pad;
    var first = data.periods[0].at, last = data.periods[data.periods.length - 1].at;
    var plotWidth = width - left - right, plotHeight = height - top - bottom;
    // Each period is a slot as wide as the next, its figure in the middle.
    var x = function (at) { return left + (at - first + 0.5) / (last - first + 1) * plotWidth; };
    var y = function (value) { return top + (high - value) / (high - low) * plotHeight; };
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": data.description + " The table below gives the figures." });
    ticks(low, high, 5).forEach(function (value) {
      svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), "class": "grid" }, chart);
      var label = svg("text", { x: left - 4, y: y(value) + 4, "text-anchor": "end" }, chart);
      label.textContent = value.toLocaleString("en-GB");
    });
    // The first, middle and last periods named (a period's name is long at 360 px; the
    // table names them all), the end ones kept inside the chart.
    var count = data.periods.length;
    [[0, "start"], [Math.floor((count - 1) / 2), "middle"], [count - 1, "end"]].forEach(function (pick, n, picks) {
      if (n && pick[0] === picks[n - 1][0]) { return; }
      var period = data.periods[pick[0]];
      var edge = { start: -0.5, middle: 0, end: 0.5 }[count === 1 ? "middle" : pick[1]];
      var label = svg("text", { x: x(period.at + edge), y: height - bottom + 16, "text-anchor": count === 1 ? "middle" : pick[1] }, chart);
      label.textContent = period.period;
    });
    if (data.baseline) {
      svg("line", { x1: left, x2: width - right, y1: y(data.baseline.value), y2: y(data.baseline.value), "class": "baseline" }, chart);
      var mark = svg("rect", { x: x(data.baseline.at) - 4, y: y(data.baseline.value) - 4, width: 8, height: 8, "class": "baseline-mark" }, chart);
      svg("title", {}, mark).textContent = "Baseline " + data.baseline.period + ": " + data.baseline.shown;
    }
    if (data.targets.length) {
      var steps = "M" + x(data.targets[0].at) + " " + y(data.targets[0].value);
      data.targets.forEach(function (target, index) {
        var next = data.targets[index + 1];
        steps += " H" + x(next ? next.at : last + 0.5);
        if (next) { steps += " V" + y(next.value); }
      });
      svg("path", { d: steps, "class": "target" }, chart);
    }
    if (data.figures.length) {
      svg("polyline", { points: data.figures.map(function (p) { return x(p.at) + "," + y(p.value); }).join(" "), "class": "figures" }, chart);
      data.figures.forEach(function (p) {
        var dot = svg("circle", { cx: x(p.at), cy: y(p.value), r: 4, "class": "figure-dot" }, chart);
        svg("title", {}, dot).textContent = p.period + ": " + p.shown;
      });
    }
    figure.appendChild(chart);
    var legend = document.createElement("ul");
    legend.className = "legend";
    if (data.figures.length) { legendItem(legend, "figures", "Figures"); }
    if (data.targets.length) { legendItem(legend, "target", "Target"); }
    if (data.baseline) { legendItem(legend, "baseline", "Baseline " + data.baseline.period); }
    figure.appendChild(legend);
  }

  var CHARTS = { bars: drawBars, trend: drawTrend };

  function drawCharts(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-chart]"), function (figure) {
      var source = figure.querySelector("script[type='application/json']");
      var draw = CHARTS[figure.dataset.chart];
      if (source && draw) { draw(figure, JSON.parse(source.textContent)); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    main = document.getElementById("view");
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a[data-view]");
      if (!link || event.ctrlKey || event.metaKey) { return; }
      event.preventDefault();
      load(link.dataset.view, true);
    });
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.dataset || !form.dataset.view) { return; }
      event.preventDefault();
      send(form, event.submitter);
    });
    window.addEventListener("popstate", function () { load(viewFromLocation(), false); });
    if (window.Telegram && window.Telegram.WebApp && window.Telegram.WebApp.ready) {
      window.Telegram.WebApp.ready();
    }
    load(viewFromLocation(), false);
  });
}());
