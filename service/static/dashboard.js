/* 统计分析 page: reads /api/v1/stats and /api/v1/cases with the web session and draws
   the charts with the vendored Apache ECharts. The instances are kept on
   window.hcpCharts so a browser test can see what was drawn. Every figure, chart
   element and warning row leads to the case list (/cases) with the same period,
   department and channel, plus the filters of the cases behind it. */
(function () {
  "use strict";
  var form = document.getElementById("pickers");
  var charts = window.hcpCharts = {
    goodRate: echarts.init(document.getElementById("chart-good-rate")),
    bad: echarts.init(document.getElementById("chart-bad")),
    departments: echarts.init(document.getElementById("chart-departments")),
    projects: echarts.init(document.getElementById("chart-projects")),
    channels: echarts.init(document.getElementById("chart-channels"))
  };
  // Someone who asked their system for less motion gets the charts drawn at once.
  var ANIMATE = !(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  var WARN = { red: "红牌", yellow: "黄牌" };
  var STATUS = { unassigned: "待分派", assigned: "待核实", rectifying: "整改中", invalid_review: "无效差评审核",
                 explain_review: "解释说明审核", feedback: "待反馈", closed: "已办结" };

  var figures = hcpFigures(form, ["department", "channel"]), params = figures.params, drill = figures.drill,
      get = figures.get;
  function go(extra) { window.location.assign(drill(extra)); }
  // A month ("2026-03") as rated_from/rated_to, kept inside the chosen period.
  function month(key) {
    var data = new FormData(form), y = +key.slice(0, 4), m = +key.slice(5, 7);
    var last = new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10), first = key + "-01";
    var from = data.get("from"), to = data.get("to");
    return { rated_from: from && from > first ? from : first, rated_to: to && to < last ? to : last };
  }
  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(2) + "%"; }
  function pct100(v) { return v === null || v === undefined ? null : +(v * 100).toFixed(2); }
  function text(el, s) { el.textContent = s; return el; }

  function showSummary(s) {
    document.querySelectorAll("#kpis .value").forEach(function (el) {
      var k = el.dataset.key, v = s[k];
      text(el, /_rate(_rated)?$/.test(k) ? pct(v) : String(v));
    });
    document.querySelectorAll("#kpis .parts").forEach(function (el) {
      var keys = el.dataset.parts.split(" ");
      text(el, s[keys[0]] + " / " + s[keys[1]]);
    });
    document.querySelectorAll("#kpis a.kpi").forEach(function (a) { a.href = drill(a.dataset.drill); });
  }
  function showMonths(b) {
    var months = b.groups.map(function (g) { return g.key; });
    charts.goodRate.off("click");
    charts.goodRate.on("click", function (p) { go(month(months[p.dataIndex])); });
    charts.bad.off("click");
    charts.bad.on("click", function (p) {
      var period = month(months[p.dataIndex]);
      if (p.seriesName === "处置率" || p.seriesName === "整改率") { period.status = "closed"; }
      go(period);
    });
    charts.goodRate.setOption({
      animation: ANIMATE,
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + "%"; } },
      xAxis: { type: "category", data: months },
      yAxis: { type: "value", name: "好评率(%)", min: function (v) { return Math.max(0, Math.floor(v.min - 1)); }, max: 100 },
      series: [{ name: "好评率", type: "line", data: b.groups.map(function (g) { return pct100(g.good_rate); }), label: { show: months.length <= 12 } }]
    }, true);
    charts.bad.setOption({
      animation: ANIMATE,
      tooltip: { trigger: "axis" },
      legend: { data: ["差评数", "处置率", "整改率"] },
      xAxis: { type: "category", data: months },
      yAxis: [{ type: "value", name: "差评数", minInterval: 1 }, { type: "value", name: "%", max: 100, min: 0 }],
      series: [
        { name: "差评数", type: "bar", data: b.groups.map(function (g) { return g.bad; }) },
        { name: "处置率", type: "line", yAxisIndex: 1, data: b.groups.map(function (g) { return pct100(g.disposal_rate); }) },
        { name: "整改率", type: "line", yAxisIndex: 1, data: b.groups.map(function (g) { return pct100(g.rectification_rate); }) }
      ]
    }, true);
  }
  function showDepartments(b) {
    var rows = b.groups.slice().sort(function (x, y) { return (x.good_rate || 0) - (y.good_rate || 0); });
    charts.departments.off("click");
    charts.departments.on("click", function (p) { go({ department: rows[p.dataIndex].key }); });
    charts.departments.setOption({
      animation: ANIMATE,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 150 },
      xAxis: { type: "value", name: "好评率(%)", max: 100 },
      yAxis: { type: "category", data: rows.map(function (g) { return g.label; }) },
      series: [{ name: "好评率", type: "bar", data: rows.map(function (g) { return pct100(g.good_rate); }),
                 label: { show: true, position: "right", formatter: "{c}%" } }]
    }, true);
    // 办件评价率, lowest first: the province marks a department down when it falls short of 100 %.
    var served = b.groups.filter(function (g) { return g.projects; })
      .sort(function (x, y) { return (x.rated_projects_rate || 0) - (y.rated_projects_rate || 0); });
    charts.projects.off("click");
    charts.projects.on("click", function (p) { go({ department: served[p.dataIndex].key }); });
    charts.projects.setOption({
      animation: ANIMATE,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 150 },
      xAxis: { type: "value", name: "办件评价率(%)", max: 100 },
      yAxis: { type: "category", data: served.map(function (g) { return g.label; }) },
      series: [{ name: "办件评价率", type: "bar", data: served.map(function (g) { return pct100(g.rated_projects_rate); }),
                 label: { show: true, position: "right", formatter: function (p) {
                   var g = served[p.dataIndex]; return p.value + "%（" + g.rated_projects + "/" + g.projects + "）"; } } }]
    }, true);
  }
  function showChannels(b) {
    charts.channels.off("click");
    charts.channels.on("click", function (p) { go({ channel: p.data.code }); });
    charts.channels.setOption({
      animation: ANIMATE,
      tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
      legend: { bottom: 0 },
      series: [{ name: "评价数", type: "pie", radius: ["35%", "65%"],
                 data: b.groups.map(function (g) { return { name: g.label, value: g.total, code: g.key }; }) }]
    }, true);
  }
  function showWarnings(page) {
    var body = document.getElementById("warning-rows");
    body.textContent = "";
    text(document.getElementById("warning-count"), "（共 " + page.total + " 件）");
    if (!page.items.length) {
      var tr = body.insertRow(); var td = tr.insertCell(); td.colSpan = 7; text(td, "暂无预警工单");
      return;
    }
    // Each cell carries its column's name, shown beside it when a phone stacks the rows.
    var heads = Array.prototype.map.call(document.querySelectorAll("table.warnings th"), function (th) { return th.textContent; });
    page.items.forEach(function (c) {
      var tr = body.insertRow();
      tr.className = "warn-" + c.warning;
      [WARN[c.warning] || c.warning, "#" + c.id, c.department_name, c.assignee || "待分派",
       STATUS[c.status] || c.status, c.callback_due, c.close_due].forEach(function (v, i) {
        var td = tr.insertCell(); td.dataset.label = heads[i];
        if (i < 2) {  // the card leads to the list of that card, the number to the case
          var a = document.createElement("a");
          a.href = i === 0 ? drill({ status: "open", warning: c.warning }) : "/cases/" + c.id;
          td.appendChild(text(a, v));
        } else {
          text(td, v);
        }
      });
    });
  }
  function exports() {
    document.getElementById("warnings-all").href = drill({ status: "open", warning: "any" });
    document.getElementById("export-xlsx").href = "/api/v1/stats/export?" + params({ format: "xlsx", by: "department" });
    document.getElementById("export-csv").href = "/api/v1/stats/export?" + params({ format: "csv", by: "department" });
  }
  function load() {
    var err = document.getElementById("error");
    err.hidden = true;
    exports();
    var dept = new FormData(form).get("department");
    var caseQuery = new URLSearchParams({ warning: "any", per_page: "100" });
    if (dept) { caseQuery.set("department", dept); }
    return Promise.all([
      get("/api/v1/stats/summary").then(showSummary),
      get("/api/v1/stats/breakdown", { by: "month" }).then(showMonths),
      get("/api/v1/stats/breakdown", { by: "department" }).then(showDepartments),
      get("/api/v1/stats/breakdown", { by: "channel" }).then(showChannels),
      get("/api/v1/cases", null, caseQuery.toString()).then(showWarnings)
    ]).then(function () { document.body.dataset.loaded = "yes"; })
      .catch(function (e) { err.hidden = false; text(err, "加载失败：" + e.message); });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
  load();
})();
