/* 我的工单: the supervisors' batch form. The row checkboxes belong to the form (form="batch");
   this script only counts them, selects a whole page, and asks for a handler when the
   action is 分派. What each action may do to each case is decided by the server. */
(function () {
  "use strict";
  var form = document.getElementById("batch");
  var boxes = document.querySelectorAll("input[name=ids][form=batch]");
  var all = document.getElementById("select-all");
  var action = document.getElementById("batch-action");
  var assignee = document.getElementById("batch-assignee");
  function count() {
    var n = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    document.getElementById("batch-count").textContent = "已选 " + n + " 件";
    return n;
  }
  function needs() { assignee.required = action.value === "assign"; assignee.disabled = action.value !== "assign"; }
  boxes.forEach(function (b) { b.addEventListener("change", count); });
  if (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      count();
    });
  }
  action.addEventListener("change", needs);
  form.addEventListener("submit", function (e) {
    if (!count()) { e.preventDefault(); document.getElementById("batch-count").textContent = "请先勾选工单"; }
  });
  needs();
  count();
})();
