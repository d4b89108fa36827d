/* 热点分析 page: reads /api/v1/insights/hotspots and /api/v1/stats/breakdown?by=day with the
   web session and draws the charts with the vendored Apache ECharts (instances on
   window.hcpCharts for the browser tests). A term leads to the case list searched for
   the word (q=), an anomaly to the case list of its item or department, same period. */
(function () {
  "use strict";
  var form = document.getElementById("pickers");
  var charts = window.hcpCharts = {
    terms: echarts.init(document.getElementById("chart-terms")),
    trend: echarts.init(document.getElementById("chart-trend"))
  };
  var KIND = { item: "事项", department: "部门" };
  var figures = hcpFigures(form, ["department"]), drill = figures.drill, get = figures.get;

  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
  function cell(tr, content, label) {
    var td = document.createElement("td");
    if (label) { td.dataset.label = label; }
    if (content instanceof Node) { td.appendChild(content); } else { td.textContent = content; }
    tr.appendChild(td);
    return td;
  }
  function link(textContent, href) {
    var a = document.createElement("a");
    a.textContent = textContent;
    a.href = href;
    return a;
  }
  function empty(tbody, cols, message) {
    tbody.textContent = "";
    var tr = tbody.insertRow();
    var td = cell(tr, message);
    td.colSpan = cols;
  }

  function showTerms(terms) {
    var tbody = document.getElementById("term-rows");
    document.getElementById("term-count").textContent = "（" + terms.length + "）";
    if (!terms.length) { empty(tbody, 6, "本期没有热词"); } else { tbody.textContent = ""; }
    terms.forEach(function (t) {
      var tr = tbody.insertRow();
      tr.className = t.rising ? "rising" : "";
      cell(tr, link(t.term, drill({ q: t.term })), "热词");
      cell(tr, String(t.count), "提及评价数");
      cell(tr, link(String(t.bad), drill({ q: t.term })), "其中差评");
      cell(tr, pct(t.share_bad), "差评占比");
      cell(tr, String(t.previous), "上期");
      cell(tr, t.rising ? "↑ 上升" : "", "趋势");
    });
    var shown = terms.slice(0, 15).reverse();
    charts.terms.off("click");
    charts.terms.on("click", function (p) { window.location.assign(drill({ q: shown[p.dataIndex].term })); });
    charts.terms.setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["本期", "上期"] },
      grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: shown.map(function (t) { return (t.rising ? "↑ " : "") + t.term; }) },
      series: [
        { name: "本期", type: "bar", data: shown.map(function (t) { return t.count; }) },
        { name: "上期", type: "bar", data: shown.map(function (t) { return t.previous; }) }
      ]
    }, true);
  }
  function showAnomalies(rows) {
    var tbody = document.getElementById("anomaly-rows");
    document.getElementById("anomaly-count").textContent = "（" + rows.length + "）";
    if (!rows.length) { empty(tbody, 7, "本期没有显著异常"); } else { tbody.textContent = ""; }
    rows.forEach(function (a) {
      var tr = tbody.insertRow(), filter = {};
      filter[a.kind] = a.code;
      cell(tr, KIND[a.kind] || a.kind, "类型");
      cell(tr, link(a.name || a.code, drill(filter)), "名称");
      cell(tr, String(a.bad), "差评数");
      cell(tr, String(a.total), "评价数");
      cell(tr, pct(a.bad_rate), "差评率");
      cell(tr, pct(a.baseline_rate), "基线差评率");
      cell(tr, a.p_value.toExponential(2), "p 值");
    });
  }
  function showTrend(b) {
    var days = b.groups.map(function (g) { return g.key; });
    charts.trend.off("click");
    charts.trend.on("click", function (p) {
      window.location.assign(drill({ rated_from: days[p.dataIndex], rated_to: days[p.dataIndex] }));
    });
    charts.trend.setOption({
      tooltip: { trigger: "axis" },
      legend: { data: ["评价数", "差评数"] },
      grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: days },
      yAxis: [{ type: "value", minInterval: 1 }, { type: "value", minInterval: 1 }],
      series: [
        { name: "评价数", type: "line", data: b.groups.map(function (g) { return g.total; }) },
        { name: "差评数", type: "bar", yAxisIndex: 1, data: b.groups.map(function (g) { return g.bad; }) }
      ]
    }, true);
  }
  function load() {
    var error = document.getElementById("error");
    error.hidden = true;
    delete document.body.dataset.loaded;
    Promise.all([
      get("/api/v1/insights/hotspots").then(function (h) { showTerms(h.terms); showAnomalies(h.anomalies); }),
      get("/api/v1/stats/breakdown", { by: "day" }).then(showTrend)
    ]).then(function () { document.body.dataset.loaded = "yes"; }).catch(function (e) { error.textContent = "加载失败：" + e.message; error.hidden = false; });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
  window.addEventListener("resize", function () { charts.terms.resize(); charts.trend.resize(); });
  load();
}());
