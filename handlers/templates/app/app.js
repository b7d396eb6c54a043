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

  var CHARTS = { bars: drawBars };

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
