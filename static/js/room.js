// The case room: chat that never loses a message, typing, read receipts, presence, live status.
// Messages are numbered by the server; the client keeps the last number it holds and asks for
// everything after it on every (re)connect. Unsent messages wait in localStorage with their
// client id and are sent again until acknowledged, so a retry is stored once.
(function () {
  "use strict";
  var room = document.getElementById("chat");
  if (!room || !window.WebSocket) return;
  var reference = room.dataset.reference;
  var me = parseInt(room.dataset.userId, 10);
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = form ? form.querySelector("textarea") : null;
  var typing = document.getElementById("typing");
  var presence = document.getElementById("presence");
  var errorBox = document.getElementById("chat-error");
  var texts = room.dataset;
  var lastSeq = parseInt(room.dataset.lastSeq || "0", 10);
  // How far the others had read when the page was made (server-side marks): a reload keeps "read".
  var readBy = { 0: parseInt(room.dataset.readSeq || "0", 10) };
  var outboxKey = "outbox:" + reference;
  var typingTimer = null;
  var retryTimer = null;
  var lastTypingSent = 0;
  var readSent = 0;
  var resyncing = false;

  function outbox() {
    try { return JSON.parse(localStorage.getItem(outboxKey) || "[]"); } catch (e) { return []; }
  }
  function saveOutbox(items) {
    try { localStorage.setItem(outboxKey, JSON.stringify(items)); } catch (e) { /* private mode */ }
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  // The time a message was sent, in the site's time zone (Beijing) whatever the phone's setting,
  // written as the server writes it on the page ("11月26日 17:00" / "Nov 26, 17:00").
  var chinese = (document.documentElement.lang || "").indexOf("zh") === 0;
  var timeFormat = null;
  try {
    timeFormat = new Intl.DateTimeFormat(chinese ? "en-US" : document.documentElement.lang || "en", {
      timeZone: room.dataset.timeZone || undefined, month: chinese ? "numeric" : "short",
      day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    });
  } catch (e) { timeFormat = null; }
  function timeText(when) {
    if (!timeFormat) return when.toLocaleString();
    var p = {};
    timeFormat.formatToParts(when).forEach(function (part) { p[part.type] = part.value; });
    return chinese ? p.month + "月" + p.day + "日 " + p.hour + ":" + p.minute
      : p.month + " " + p.day + ", " + p.hour + ":" + p.minute;
  }
  function timeElement(iso) {
    var time = document.createElement("time");
    var when = iso ? new Date(iso) : new Date();
    time.dateTime = when.toISOString();
    time.textContent = timeText(when);
    return time;
  }
  function setReceipt(li, text) {
    var meta = li.querySelector(".meta");
    if (!meta) return;
    var receipt = meta.querySelector(".receipt");
    if (!receipt) {
      receipt = document.createElement("span");
      receipt.className = "receipt";
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(receipt);
    }
    receipt.textContent = text;
  }

  function bubble(message) {
    var li = document.createElement("li");
    li.dataset.seq = message.seq || "";
    if (message.client_id) li.dataset.clientId = message.client_id;
    if (message.kind === "system") {
      li.className = "system";
      li.textContent = (message.text || "") + " ";
      li.appendChild(timeElement(message.created_at));
      return li;
    }
    li.className = message.sender_id === me ? "mine" : "theirs";
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = message.sender;
    li.appendChild(who);
    if (message.body) {
      var body = document.createElement("p");
      body.textContent = message.body;
      li.appendChild(body);
    }
    if (message.document && message.document.is_audio) {
      // A voice message (static/js/voice.js): played in place, its length beside it.
      var voice = document.createElement("span");
      voice.className = "chat-voice";
      var label = document.createElement("span");
      label.className = "voice-label";
      label.textContent = (texts.voice || "") + " ";
      var length = document.createElement("span");
      length.className = "voice-length";
      var seconds = Math.max(Math.round((message.document.duration_ms || 0) / 1000), 1);
      length.textContent = message.document.duration_ms ? Math.floor(seconds / 60) + ":" + ("0" + (seconds % 60)).slice(-2) : "";
      label.appendChild(length);
      var player = document.createElement("audio");
      player.controls = true;
      player.preload = "metadata";
      player.src = message.document.url;
      voice.appendChild(label);
      voice.appendChild(player);
      li.appendChild(voice);
    } else if (message.document) {
      var link = document.createElement("a");
      link.href = message.document.url;
      link.target = "_blank";
      link.rel = "noopener";
      if (message.document.is_image) {
        // Served by the case's own access-checked document address, like the page's previews.
        link.className = "chat-image";
        var img = document.createElement("img");
        img.src = message.document.url;
        img.alt = message.document.name;
        img.loading = "lazy";
        link.appendChild(img);
      } else {
        link.className = "chat-file";
        link.textContent = message.document.name;
      }
      li.appendChild(link);
    } else if (message.attachment) {
      var name = document.createElement("p");
      name.textContent = message.attachment;
      li.appendChild(name);
    }
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.appendChild(timeElement(message.created_at));
    li.appendChild(meta);
    return li;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  // lastSeq is the number up to which this page holds every message. A message further on means
  // a broadcast was lost on the way (the server only says so by skipping a number): ask for what
  // is missing rather than jump past it, or the gap would never be filled, even on reconnect.
  function held(seq) { return !!log.querySelector("li[data-seq='" + seq + "']"); }
  function advance() { while (held(lastSeq + 1)) lastSeq += 1; }
  function resync() {
    if (!resyncing && socket && socket.send({ type: "hello", last_seq: lastSeq })) resyncing = true;
  }

  // In number order: a message recovered by a resync goes where it belongs, not at the bottom.
  function insert(li, seq) {
    var numbered = log.querySelectorAll("li[data-seq]:not([data-seq=''])");
    for (var i = numbered.length - 1; i >= 0; i--) {
      if (parseInt(numbered[i].dataset.seq, 10) < seq) { numbered[i].after(li); return; }
    }
    log.insertBefore(li, log.firstChild);
  }

  function addMessage(message) {
    var shown = message.seq ? log.querySelector("li[data-seq='" + message.seq + "']") : null;
    // A file sent from here was shown by its name until the server's copy brings its picture or link.
    var placeholder = shown && message.document && !shown.querySelector(".chat-image, .chat-file, .chat-voice") ? shown : null;
    if (shown && !placeholder) return;
    var pending = placeholder || (message.client_id && message.sender_id === me
      ? log.querySelector("li.pending[data-client-id='" + CSS.escape(message.client_id) + "']") : null);
    var li = bubble(message);
    if (pending) pending.replaceWith(li); else insert(li, message.seq);
    advance();
    if (message.seq > lastSeq) resync();
    markRead();
    scrollDown();
  }

  function showPending(item) {
    if (log.querySelector("li[data-client-id='" + CSS.escape(item.client_id) + "']")) return;
    var li = bubble({ sender_id: me, sender: texts.me, body: item.body, client_id: item.client_id, attachment: item.name });
    li.classList.add("pending");
    setReceipt(li, texts.sending);
    log.appendChild(li);
    scrollDown();
  }

  // The outbox goes out in typing order, one message at a time: the next leaves only once the
  // one before it is acknowledged, so a message typed during a reconnect or an outage never
  // overtakes an older one, and a retried message keeps its place.
  var inFlight = null;
  function flushOutbox() {
    if (inFlight || retryTimer || resyncing) return;
    var head = outbox()[0];
    var frame = { type: "message", client_id: head && head.client_id, body: head ? head.body : "" };
    if (head && head.document_id) frame.document_id = head.document_id;
    if (head && socket.send(frame)) inFlight = head.client_id;
  }
  function settled(clientId) {
    saveOutbox(outbox().filter(function (i) { return i.client_id !== clientId; }));
    if (inFlight === clientId) inFlight = null;
  }
  function retryLater(seconds) {
    inFlight = null;
    if (retryTimer) return;
    var delay = (seconds || 2) * 1000 * (1 + Math.random() / 2);
    retryTimer = setTimeout(function () { retryTimer = null; flushOutbox(); }, delay);
  }

  function markRead() {
    if (document.hidden || lastSeq <= readSent) return;
    if (socket && socket.send({ type: "read", seq: lastSeq })) readSent = lastSeq;
  }

  function showReceipts() {
    var seen = 0;
    Object.keys(readBy).forEach(function (id) { if (parseInt(id, 10) !== me) seen = Math.max(seen, readBy[id]); });
    log.querySelectorAll("li.mine").forEach(function (li) {
      var seq = parseInt(li.dataset.seq || "0", 10);
      if (seq) setReceipt(li, seq <= seen ? texts.read : texts.sent);
    });
  }

  function showPresence(online) {
    if (!presence) return;
    var names = online.filter(function (p) { return p.id !== me; }).map(function (p) { return p.name; });
    presence.textContent = names.length ? texts.online + " " + names.join("、") : "";
  }

  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  var socket = new window.ReconnectingSocket("/ws/cases/" + encodeURIComponent(reference) + "/", {
    onstate: window.ReconnectingSocket.showState(document.getElementById("conn-state")),
    onopen: function () {
      readSent = 0; inFlight = null; resyncing = true;
      socket.send({ type: "hello", last_seq: lastSeq });
    },
    onmessage: function (data) {
      switch (data.type) {
        case "message": addMessage(data.message); showReceipts(); break;
        case "synced":
          advance();
          // A page of what was missed: ask for the next one from where it ended.
          if (data.more) { socket.send({ type: "hello", last_seq: lastSeq }); break; }
          resyncing = false; flushOutbox(); showPresence(data.online || []); markRead();
          break;
        case "ack":
          settled(data.client_id);
          var li = log.querySelector("li[data-client-id='" + CSS.escape(data.client_id) + "']");
          if (li) { li.classList.remove("pending"); li.dataset.seq = data.seq; advance(); }
          // Numbered past what this page holds: messages in between were missed.
          if (data.seq > lastSeq) resync();
          showReceipts();
          flushOutbox();
          break;
        case "resync": resync(); break;
        case "pong": if (data.last_seq > lastSeq) resync(); break;
        case "read": readBy[data.user_id] = data.seq; showReceipts(); break;
        case "presence": showPresence(data.online); break;
        case "typing":
          if (!typing) break;
          typing.textContent = data.name + " " + texts.typing;
          clearTimeout(typingTimer);
          typingTimer = setTimeout(function () { typing.textContent = ""; }, 4000);
          break;
        case "status": case "place": window.ReconnectingSocket.refreshLive(); break;
        case "error":
          showError(data.message);
          if (data.answers === "hello" && data.retry) {
            // The catch-up itself failed for a passing fault: ask again shortly.
            setTimeout(function () { resyncing = false; resync(); }, (data.retry_after || 2) * 1000);
          }
          if (data.client_id) {
            if (data.retry) {
              // Too fast or a passing fault: the same client id goes again shortly (stored once).
              retryLater(data.retry_after);
            } else {
              // Refused for good (too long, case finished...): it would be refused again.
              settled(data.client_id);
              var failed = log.querySelector("li[data-client-id='" + CSS.escape(data.client_id) + "']");
              if (failed) { failed.classList.add("failed"); setReceipt(failed, texts.failed); }
              flushOutbox();
            }
          }
          break;
        case "closed": showError(texts.closed); if (form) form.hidden = true; break;
      }
    }
  });
  setInterval(function () { socket.send({ type: "ping" }); }, 25000);
  document.addEventListener("visibilitychange", markRead);

  if (form && input) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = input.value.trim();
      if (!body) return;
      showError("");
      var item = { client_id: newId(), body: body };
      saveOutbox(outbox().concat([item]));
      showPending(item);
      input.value = "";
      flushOutbox();
    });
    input.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTypingSent > 2000) { lastTypingSent = now; socket.send({ type: "typing" }); }
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
  }
  // Attach: the file goes through the case's document upload (the same checks, the same private,
  // access-checked storage), then into the chat as a message pointing at it, by the outbox, so a
  // dropped connection loses it no more than a typed message.
  function attach(input) {
    var file = input.files && input.files[0];
    if (!file || !window.FormData) return;
    var token = form.querySelector("input[name=csrfmiddlewaretoken]");
    var data = new FormData();
    data.append("files", file);
    showError("");
    if (typing) typing.textContent = texts.uploading;
    fetch(room.dataset.uploadUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": token ? token.value : "" }
    })
      .then(function (response) { return response.json().catch(function () { return null; }); })
      .then(function (body) {
        var result = body && body.results && body.results[0];
        if (!result || !result.ok || !result.id) {
          showError((result && result.message) || (body && body.error) || texts.failed);
          return;
        }
        var documents = document.querySelector("ul.documents");
        if (result.html && documents) {
          var none = documents.querySelector(".none");
          if (none) none.remove();
          documents.insertAdjacentHTML("beforeend", result.html);
        }
        var item = { client_id: newId(), body: "", document_id: result.id, name: result.name };
        saveOutbox(outbox().concat([item]));
        showPending(item);
        flushOutbox();
      })
      .catch(function () { showError(texts.failed); })
      .then(function () { input.value = ""; if (typing) typing.textContent = ""; });
  }
  ["chat-photo", "chat-file"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input && form) input.addEventListener("change", function () { attach(input); });
  });

  log.addEventListener("chat:earlier", showReceipts);

  outbox().forEach(showPending);
  scrollDown();
})();
