// Intake helpers: the materials of the chosen service, what is still missing, the emergency notice.
(function () {
  "use strict";
  var form = document.querySelector("form[data-intake]");
  if (!form) return;
  var select = form.querySelector("select[name=skill]");
  var missing = form.querySelector(".missing");

  function labelFor(kind) {
    var label = form.querySelector(".intake-file[data-kind='" + kind + "'] label");
    return label ? label.textContent.trim() : kind;
  }

  function hasFile(kind) {
    var box = form.querySelector(".intake-file[data-kind='" + kind + "']");
    if (!box) return true;
    var input = box.querySelector("input[type=file]");
    return (input && input.files.length > 0) || box.querySelector(".staged") !== null;
  }

  function refresh() {
    var required = [];
    form.querySelectorAll(".materials-for").forEach(function (block) {
      var shown = !select || block.dataset.skill === select.value;
      block.hidden = !shown;
      if (shown && block.dataset.required) required = block.dataset.required.split(",");
    });
    var absent = required.filter(function (kind) { return kind && !hasFile(kind); }).map(labelFor);
    if (missing) {
      missing.hidden = absent.length === 0;
      missing.textContent = missing.dataset.label + " " + absent.join("、");
    }
  }

  // Show only the figures the chosen dispute's estimate needs.
  function ruleFields() {
    var code = "";
    form.querySelectorAll(".materials-for").forEach(function (block) {
      if (!select || block.dataset.skill === select.value) code = block.dataset.code || "";
    });
    form.querySelectorAll(".rule-fields").forEach(function (box) {
      box.hidden = box.dataset.for !== code;
    });
  }

  function emergency() {
    var notice = document.getElementById("emergency");
    var any = form.querySelectorAll("input[name=urgent_signs]:checked").length > 0;
    if (notice) notice.hidden = !any;
    if (any && notice) notice.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  if (select) select.addEventListener("change", function () { refresh(); ruleFields(); });
  form.querySelectorAll("input[type=file]").forEach(function (i) { i.addEventListener("change", refresh); });
  form.querySelectorAll("input[name=urgent_signs]").forEach(function (i) { i.addEventListener("change", emergency); });
  refresh();
  ruleFields();
})();
