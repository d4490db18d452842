// A button marked data-print prints the page (the receipt); a script of its own, since the
// Content-Security-Policy allows no inline handler.
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
