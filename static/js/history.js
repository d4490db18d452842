// Earlier chat messages on demand: the case page comes with only the newest ones. "Load earlier
// messages" asks the server for the page before the first one shown and puts it on top, in the
// page's own markup, keeping the reader's place in the conversation.
(function () {
  "use strict";
  var button = document.getElementById("chat-earlier");
  var log = document.getElementById("chat-log");
  if (!button || !log || !window.fetch) return;
  var errorBox = document.getElementById("chat-error");

  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  button.addEventListener("click", function () {
    if (button.disabled || !button.dataset.before) return;
    button.disabled = true;
    var url = button.dataset.url + "?before=" + encodeURIComponent(button.dataset.before);
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var template = document.createElement("template");
        template.innerHTML = data.html;
        // A message the live chat already put on the page (a resync) is not shown twice.
        template.content.querySelectorAll("li[data-seq]").forEach(function (li) {
          if (log.querySelector("li[data-seq='" + li.dataset.seq + "']")) li.remove();
        });
        var height = log.scrollHeight;
        var top = log.scrollTop;
        log.insertBefore(template.content, log.firstChild);
        log.scrollTop = top + (log.scrollHeight - height);
        // The chat (room.js) marks them sent or read, as it knows how far the others have read.
        log.dispatchEvent(new CustomEvent("chat:earlier"));
        showError("");
        if (data.more && data.before) {
          button.dataset.before = data.before;
          button.disabled = false;
        } else {
          button.hidden = true;
        }
      })
      .catch(function () {
        showError(button.dataset.failed || "");
        button.disabled = false;
      });
  });
})();
