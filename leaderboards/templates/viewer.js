(function () {
  var samples = Array.prototype.slice.call(document.querySelectorAll("details.sample"));
  var task = document.getElementById("f-task"), outcome = document.getElementById("f-outcome"),
      tools = document.getElementById("f-tools"), end = document.getElementById("f-end"),
      shown = document.getElementById("shown");
  function apply() {
    var n = 0;
    samples.forEach(function (s) {
      var ok = (task.value === "" || s.dataset.task === task.value) &&
               (outcome.value === "" || s.dataset.correct === outcome.value) &&
               (tools.value === "" || s.dataset.tools === tools.value) &&
               (end.value === "" || s.dataset.end === end.value);
      s.hidden = !ok; if (ok) n++;
    });
    shown.textContent = n + " of " + samples.length + " samples";
  }
  [task, outcome, tools, end].forEach(function (el) { el.addEventListener("change", apply); });
  document.getElementById("expand").addEventListener("click", function () {
    samples.forEach(function (s) { if (!s.hidden) s.open = true; }); });
  document.getElementById("collapse").addEventListener("click", function () {
    samples.forEach(function (s) { s.open = false; }); });
  var q = new URLSearchParams(location.hash.slice(1));
  if (q.get("task") !== null) task.value = q.get("task");
  if (q.get("correct") !== null) outcome.value = q.get("correct");
  if (q.get("tools") !== null) tools.value = q.get("tools");
  if (q.get("end") !== null) end.value = q.get("end");
  if (q.get("open") === "1") samples.forEach(function (s) { s.open = true; });
  apply();
  document.body.setAttribute("data-ready", "1");
})();
