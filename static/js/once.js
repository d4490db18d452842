// Forms that create something are sent once: after the first submit their buttons are disabled
// and a second submit is ignored. The server holds the real guarantee (the form's
// idempotency_key); this spares the second request and shows that the first one is on its way.
(function () {
  "use strict";
  var FIELD = "input[name=idempotency_key]";
  var RELEASE_MS = 20000;

  function buttons(form) {
    return form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
  }

  function release(form) {
    delete form.dataset.sent;
    buttons(form).forEach(function (b) { b.disabled = false; b.removeAttribute("aria-busy"); });
  }

  // On the document, so it runs after the form's own handlers: a form a script sends itself
  // (upload.js prevents the default) manages its own button.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.querySelector(FIELD) || event.defaultPrevented) return;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    // Disabled after this turn: a button disabled now would drop its own name=value (e.g. "skip").
    window.setTimeout(function () {
      buttons(form).forEach(function (b) { b.disabled = true; b.setAttribute("aria-busy", "true"); });
    }, 0);
    // If no answer ever comes (the connection dropped), let the person try again: the key keeps
    // a second request from doing the work twice.
    window.setTimeout(function () { release(form); }, RELEASE_MS);
  });

  // A case was sent (the server's message says so): the intake's draft kept on this device
  // (steps.js) has done its work. Cleared here, on the page the intake leads to, and not when
  // Send is pressed, so a send lost on the way keeps the draft.
  if (document.querySelector(".message.intake-sent")) {
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf("intake-draft:") === 0) window.localStorage.removeItem(key);
      }
    } catch (err) { /* no storage, no draft */ }
  }

  // Back to a page kept in the browser's cache: its forms can be used again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form").forEach(function (form) {
      if (form.dataset.sent) release(form);
    });
  });
})();
