(function () {
  function key(td) {
    var v = td.getAttribute("data-sort");
    if (v === null || v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortTable(table, col, descending) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) return (x === null) - (y === null);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    heads[col].setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.setAttribute("data-sorted", col + (descending ? ",desc" : ",asc"));
  }
  var tables = document.querySelectorAll("table.sortable");
  tables.forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      var go = function () { sortTable(table, i, th.getAttribute("aria-sort") === "ascending"); };
      th.tabIndex = 0;
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
    });
    table.setAttribute("data-sortable", "ready");
    var box = table.parentNode;  // the table fits its column (no horizontal scrolling needed)
    table.setAttribute("data-fits", table.offsetWidth <= box.clientWidth + 1 ? "1" : "0");
  });
  var m = /[#&]sort=([^,&]+),(\d+)(,desc)?/.exec(decodeURIComponent(location.hash));
  if (m) {
    var t = document.querySelector('table.sortable[data-key="' + m[1].replace(/"/g, "") + '"]');
    if (t && +m[2] < t.tHead.rows[0].cells.length) sortTable(t, +m[2], !!m[3]);
  }
  document.body.setAttribute("data-ready", "1");
})();
