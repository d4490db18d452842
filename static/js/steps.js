// The intake as steps, one shown at a time, with the progress list above it; and a draft of what
// is typed kept on the device (localStorage) until the case is sent, so a reload or a dropped
// connection loses nothing but the chosen files (a browser cannot keep those). Without
// JavaScript the whole form shows at once and posts the same. The server checks everything.
(function () {
  "use strict";
  var form = document.querySelector("form[data-intake][data-steps]");
  if (!form) return;
  var steps = Array.prototype.slice.call(form.querySelectorAll("section.step"));
  var progress = document.querySelectorAll(".progress li[data-step]");
  var KEY = "intake-draft:" + window.location.pathname;
  var SKIP = ["csrfmiddlewaretoken", "idempotency_key", "staged", "consent_version"];

  // --- steps ---------------------------------------------------------------------------------
  var note = document.querySelector("[data-draft-note]");
  var drafting = false;

  function show(index, focus) {
    steps.forEach(function (step, i) { step.hidden = i !== index; });
    // Said once, on the first step; the files' own note stays by the files.
    if (note) note.hidden = !drafting || index > 0;
    progress.forEach(function (item, i) {
      if (i === index) item.setAttribute("aria-current", "step"); else item.removeAttribute("aria-current");
      item.classList.toggle("done", i < index);
    });
    if (focus) {
      var title = steps[index].querySelector("h2");
      if (title) { title.setAttribute("tabindex", "-1"); title.focus(); }
      window.scrollTo(0, 0);
    }
  }

  // The required fields of a step, checked before going on; the browser says what is wrong.
  function stepValid(step) {
    var fields = step.querySelectorAll("input, select, textarea");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      if (field.type === "hidden" || field.disabled || field.closest("[hidden]")) continue;
      if (!field.checkValidity()) { field.reportValidity(); return false; }
    }
    return true;
  }

  steps.forEach(function (step, i) {
    step.querySelectorAll("[data-next], [data-back]").forEach(function (b) { b.hidden = false; });
    var next = step.querySelector("[data-next]");
    if (next) next.addEventListener("click", function () { if (stepValid(step)) show(i + 1, true); });
    var back = step.querySelector("[data-back]");
    if (back) back.addEventListener("click", function () { show(i - 1, true); });
  });
  // Back from the server with errors: open the first step that has one.
  var first = 0;
  for (var i = 0; i < steps.length; i++) {
    if (steps[i].querySelector(".has-error, .error, .errors")) { first = i; break; }
  }
  show(first, false);

  // --- the draft -----------------------------------------------------------------------------
  var storage = null;
  try { storage = window.localStorage; storage.setItem(KEY + ":probe", "1"); storage.removeItem(KEY + ":probe"); }
  catch (err) { storage = null; }
  if (!storage) return;
  drafting = true;
  if (note) note.hidden = first > 0;
  form.querySelectorAll("[data-draft-files]").forEach(function (p) { p.hidden = false; });

  function kept(field) {
    return field.name && SKIP.indexOf(field.name) < 0 && field.type !== "file" && field.type !== "hidden" &&
      field.type !== "password" && !/_consent$/.test(field.name) && field.type !== "submit" && field.type !== "button";
  }

  function save() {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!kept(field)) return;
      if (field.type === "checkbox" || field.type === "radio") {
        if (!values[field.name]) values[field.name] = [];
        if (field.checked) values[field.name].push(field.value);
      } else {
        values[field.name] = field.value;
      }
    });
    try { storage.setItem(KEY, JSON.stringify({ saved: Date.now(), values: values })); } catch (err) { /* full */ }
  }

  function restore() {
    var draft = null;
    try { draft = JSON.parse(storage.getItem(KEY) || "null"); } catch (err) { draft = null; }
    if (!draft || !draft.values) return false;
    var any = false;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!kept(field) || !(field.name in draft.values)) return;
      var value = draft.values[field.name];
      if (field.type === "checkbox" || field.type === "radio") {
        field.checked = Array.isArray(value) && value.indexOf(field.value) >= 0;
        if (field.checked) any = true;
      } else if (typeof value === "string" && field.value !== value) {
        field.value = value;
        if (value) any = true;
      }
      // The page's own helpers (materials, emergency, relative's fields) follow the restored values.
      field.dispatchEvent(new Event("change", { bubbles: true }));
    });
    return any;
  }

  // A page the server sent back with errors holds what was posted: that wins over the draft.
  var fromServer = form.querySelector(".has-error, .errors") !== null;
  if (!fromServer && restore()) {
    var restored = document.querySelector("[data-draft-restored]");
    if (restored) restored.hidden = false;
  }
  form.addEventListener("input", save);
  form.addEventListener("change", save);
  var clear = document.querySelector("[data-draft-clear]");
  if (clear) clear.addEventListener("click", function () {
    storage.removeItem(KEY);
    window.location.reload();
  });
})();
