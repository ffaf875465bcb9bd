/* site-wide scripts: font size switch and nav highlight */
(function () {
  var sizes = ["14px", "16px", "18px"];
  window.setFontSize = function (i) {
    document.body.style.fontSize = sizes[i] || sizes[0];
  };
  document.addEventListener("DOMContentLoaded", function () {
    var links = document.querySelectorAll(".nav li a");
    for (var i = 0; i < links.length; i++) {
      if (location.pathname.indexOf(links[i].getAttribute("href")) === 0 && links[i].getAttribute("href") !== "/index.html") {
        links[i].parentNode.className = "on";
      }
    }
  });
})();
