// The citizen's rating page: show only the reasons offered for the chosen level, and ask
// for a reason or a comment before a bad rating is sent. The server checks both again.
(function () {
  "use strict";
  var form = document.getElementById("rate-form");
  if (!form) { return; }
  var reasons = document.getElementById("reasons");

  function chosenLevel() {
    var checked = form.querySelector('input[name="level"]:checked');
    return checked ? checked.value : null;
  }

  function filter() {
    var level = chosenLevel();
    reasons.hidden = level === null;
    var groups = reasons.querySelectorAll(".reason-group");
    for (var g = 0; g < groups.length; g++) {
      var shown = 0;
      var labels = groups[g].querySelectorAll("label[data-levels]");
      for (var i = 0; i < labels.length; i++) {
        var fits = level !== null && labels[i].getAttribute("data-levels").indexOf(level) !== -1;
        labels[i].hidden = !fits;
        if (!fits) { labels[i].querySelector("input").checked = false; }
        if (fits) { shown++; }
      }
      groups[g].hidden = shown === 0;
    }
  }

  function say(message) {
    var box = document.getElementById("form-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "form-error";
      box.className = "error";
      box.setAttribute("role", "alert");
      form.insertBefore(box, form.firstChild);
    }
    box.textContent = message;
    box.scrollIntoView({block: "center"});
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "level") { filter(); }
  });
  form.addEventListener("submit", function (event) {
    var level = chosenLevel();
    if (level === null) {
      event.preventDefault();
      say("请选择满意程度。");
      return;
    }
    var ticked = form.querySelectorAll('input[name="reasons"]:checked').length;
    var comment = document.getElementById("comment").value.trim();
    if ((level === "1" || level === "2") && ticked === 0 && comment === "") {
      event.preventDefault();
      say("选择“不满意”或“非常不满意”时，请至少选择一项原因或填写意见。");
    }
  });
  filter();
}());
