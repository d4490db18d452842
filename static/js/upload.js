// Uploads with progress and a result for every file. Without JavaScript the forms still post.
(function () {
  "use strict";

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, data, token, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", token);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) onProgress(Math.round((e.loaded / e.total) * 100));
      };
      xhr.onload = function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        resolve({ status: xhr.status, body: body });
      };
      xhr.onerror = function () { resolve({ status: 0, body: null }); };
      xhr.send(data);
    });
  }

  function text(key) {
    var el = document.getElementById("upload-texts");
    return el ? el.dataset[key] : "";
  }

  // Case page: every file is its own request, so one failure never costs the others.
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var input = form.querySelector("input[type=file]");
      if (!input || !input.files.length || !window.FormData) return;
      event.preventDefault();
      var list = form.querySelector(".upload-results");
      var documents = document.querySelector("ul.documents");
      var kind = form.querySelector("[name=kind]");
      var files = Array.prototype.slice.call(input.files);
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      var chain = Promise.resolve();
      files.forEach(function (file) {
        var item = document.createElement("li");
        var label = document.createElement("span");
        label.textContent = file.name + " ";
        var bar = document.createElement("progress");
        bar.max = 100; bar.value = 0;
        item.appendChild(label); item.appendChild(bar);
        list.appendChild(item);
        chain = chain.then(function () {
          var data = new FormData();
          data.append("files", file);
          if (kind) data.append("kind", kind.value);
          return post(form.action, data, csrfToken(form), function (p) { bar.value = p; }).then(function (res) {
            bar.remove();
            var result = res.body && res.body.results && res.body.results[0];
            var message = document.createElement("span");
            if (result) {
              message.textContent = result.message;
              item.className = result.ok ? "ok" : "error";
              if (result.ok && result.html && documents) {
                var none = documents.querySelector(".none");
                if (none) none.remove();
                documents.insertAdjacentHTML("beforeend", result.html);
              }
            } else {
              message.textContent = file.name + ": " + text("failed");
              item.className = "error";
            }
            label.replaceWith(message);
          });
        });
      });
      chain.then(function () { button.disabled = false; input.value = ""; });
    });
  });

  // Intake: one request with the form and its files, with a progress bar; the server answers
  // with where to go. If the form itself has errors, post it plainly so they show.
  document.querySelectorAll("form[data-intake]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var input = form.querySelector("input[type=file]");
      if (!input || !input.files.length || !window.FormData) return;
      event.preventDefault();
      var bar = form.querySelector(".upload-progress");
      bar.hidden = false;
      form.querySelector("button[type=submit]").disabled = true;
      post(form.action || window.location.href, new FormData(form), csrfToken(form), function (p) { bar.value = p; })
        .then(function (res) {
          if (res.body && res.body.redirect) {
            window.location.href = res.body.redirect;
          } else {
            form.submit();
          }
        });
    });
  });
})();
