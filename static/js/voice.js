// Voice messages on the case page: tap to record, tap "Send" to send (or "Cancel"). The recording
// goes to the server as a file (checked there by its bytes); the message then reaches every side
// of the room by its socket, like any other, and static/js/room.js shows its player.
// Hidden where the browser cannot record (no MediaRecorder or no microphone access).
(function () {
  "use strict";
  var box = document.getElementById("voice");
  var room = document.getElementById("chat");
  if (!box || !room) return;
  if (!window.MediaRecorder || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  var start = document.getElementById("voice-start");
  var send = document.getElementById("voice-send");
  var cancel = document.getElementById("voice-cancel");
  var status = document.getElementById("voice-status");
  var errorBox = document.getElementById("chat-error");
  var maxSeconds = parseInt(box.dataset.maxSeconds || "300", 10);
  // What each browser records and the server accepts: Chromium WebM/Opus, Safari MP4/AAC, Firefox Ogg/Opus.
  var TYPES = [
    ["audio/webm;codecs=opus", "voice.webm"], ["audio/webm", "voice.webm"],
    ["audio/mp4", "voice.m4a"], ["audio/ogg;codecs=opus", "voice.ogg"]
  ];
  var chosen = null;
  for (var i = 0; i < TYPES.length; i++) {
    if (!MediaRecorder.isTypeSupported || MediaRecorder.isTypeSupported(TYPES[i][0])) { chosen = TYPES[i]; break; }
  }
  if (!chosen) return;
  box.hidden = false;

  var recorder = null;
  var stream = null;
  var chunks = [];
  var started = 0;
  var ticker = null;
  var limit = null;
  var sending = false;

  function csrf() {
    var field = document.querySelector("#chat-form input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function clock(seconds) {
    var s = Math.floor(seconds);
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }
  function showError(text) {
    if (!errorBox) return;
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }
  function recordingShown(on) {
    start.hidden = on;
    send.hidden = !on;
    cancel.hidden = !on;
    box.classList.toggle("recording", on);
  }
  function release() {
    clearInterval(ticker);
    clearTimeout(limit);
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    recorder = null;
    recordingShown(false);
  }

  function upload(blob) {
    var body = new FormData();
    body.append("file", blob, chosen[1]);
    body.append("client_id", newId());
    sending = true;
    status.textContent = box.dataset.sending;
    start.disabled = true;
    fetch(box.dataset.url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok || !answer.ok) throw new Error(answer.message || box.dataset.failed);
        status.textContent = "";
      });
    }).catch(function (error) {
      status.textContent = "";
      showError(error && error.message ? error.message : box.dataset.failed);
    }).then(function () {
      sending = false;
      start.disabled = false;
    });
  }

  function stop(keep) {
    if (!recorder) return;
    var done = recorder;
    done.onstop = function () {
      var blob = new Blob(chunks, { type: done.mimeType || chosen[0] });
      chunks = [];
      if (keep && blob.size) upload(blob); else status.textContent = "";
    };
    if (done.state !== "inactive") done.stop();
    release();
  }

  start.addEventListener("click", function () {
    if (recorder || sending) return;
    showError("");
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (media) {
      stream = media;
      chunks = [];
      recorder = new MediaRecorder(media, MediaRecorder.isTypeSupported ? { mimeType: chosen[0] } : undefined);
      recorder.ondataavailable = function (event) { if (event.data && event.data.size) chunks.push(event.data); };
      recorder.start();
      started = Date.now();
      recordingShown(true);
      status.textContent = box.dataset.recording + " 0:00";
      ticker = setInterval(function () {
        status.textContent = box.dataset.recording + " " + clock((Date.now() - started) / 1000);
      }, 500);
      // Sent as it is at the limit: the server would refuse a longer one.
      limit = setTimeout(function () { stop(true); }, (maxSeconds - 1) * 1000);
      send.focus();
    }).catch(function () {
      release();
      showError(box.dataset.denied);
    });
  });
  send.addEventListener("click", function () { stop(true); });
  cancel.addEventListener("click", function () { stop(false); });
  room.dataset.voiceReady = "1";
})();
