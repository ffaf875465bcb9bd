/* Service evaluation widget: rendered in the browser after the page has loaded. */
(function () {
  var STATS = { month: "2026-11", goodRate: "99.76%", fixRate: "100%", total: "86,412" };

  function render() {
    var box = document.getElementById("hcp-widget");
    if (!box) { return; }
    box.innerHTML =
      '<div class="hcp">' +
      '<a class="hcp-entry" href="/hcp/pj.html">政务服务“好差评”</a>' +
      '<p class="hcp-stats">本月好评率 <b>' + STATS.goodRate + '</b>　' +
      '差评整改率 <b>' + STATS.fixRate + '</b>　' +
      '评价总量 <b>' + STATS.total + '</b></p>' +
      '<p><a href="/hcp/pj.html">我要评价</a>　<a href="/hcp/pj.html#gs">评价公示</a></p>' +
      '</div>';
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
