// Intake helpers: the materials of the chosen service, what is still missing, the emergency notice,
// the fields for a relative.
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
    // "Send without them" only while something required is missing (or an error is on it).
    var later = form.querySelector("input[name=materials_later]");
    var box = later && later.closest(".field");
    if (box) box.hidden = absent.length === 0 && !box.classList.contains("has-error");
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

  // The patient's name and the relationship only when asking for someone else.
  function onBehalf() {
    var box = form.querySelector("input[name=on_behalf]");
    var part = form.querySelector("[data-shown-by=on_behalf]");
    if (box && part) part.hidden = !box.checked && !part.querySelector(".has-error");
  }
  var behalf = form.querySelector("input[name=on_behalf]");
  if (behalf) behalf.addEventListener("change", onBehalf);
  onBehalf();

  // Labour disputes: what the law provides, asked of the server as the figures are typed, shown
  // before sending; the amount owed is prefilled with it unless the worker wrote their own.
  var estimateUrl = form.dataset.estimateUrl;
  var claimed = form.querySelector("input[name=amount_claimed]");
  var preview = document.getElementById("estimate-preview");
  var prefilled = "";
  var FIGURES = ["skill", "city", "monthly_wage", "amount_received", "employment_start", "employment_end",
    "sick_days", "overtime_weekday_hours", "overtime_restday_hours", "overtime_holiday_hours", "dismissal_unlawful"];
  var asked = 0;
  function estimate() {
    if (!estimateUrl || !preview || !window.fetch) return;
    var params = new URLSearchParams();
    FIGURES.forEach(function (name) {
      var field = form.elements[name];
      if (!field) return;
      if (field.type === "checkbox") { if (field.checked) params.set(name, "on"); } else params.set(name, field.value);
    });
    var mine = ++asked;
    fetch(estimateUrl + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (res) { return res.ok ? res.text() : ""; })
      .then(function (html) {
        if (mine !== asked) return;
        preview.innerHTML = html;
        var card = preview.querySelector("[data-owed]");
        var owed = card ? card.dataset.owed : "";
        if (claimed && owed && (claimed.value === "" || claimed.value === prefilled)) {
          claimed.value = owed;
          prefilled = owed;
          claimed.dispatchEvent(new Event("input", { bubbles: true }));
        }
      })
      .catch(function () { /* offline: the lawyer estimates it after sending */ });
  }
  if (estimateUrl) {
    FIGURES.forEach(function (name) {
      var field = form.elements[name];
      if (field && field.addEventListener) field.addEventListener("change", estimate);
    });
    estimate();
  }

  if (select) select.addEventListener("change", function () { refresh(); ruleFields(); });
  form.querySelectorAll("input[type=file]").forEach(function (i) { i.addEventListener("change", refresh); });
  form.querySelectorAll("input[name=urgent_signs]").forEach(function (i) { i.addEventListener("change", emergency); });
  refresh();
  ruleFields();
})();
