// A websocket that says how it is doing and comes back by itself: exponential backoff with full
// jitter (never the whole village reconnecting in lock-step), immediate retry when the phone
// comes back online, a quick return when the server says it is restarting (4503), and no retry
// once the server said the door is closed (4401/4403).
(function () {
  "use strict";

  function ReconnectingSocket(path, options) {
    this.path = path;
    this.onopen = options.onopen || function () {};
    this.onmessage = options.onmessage || function () {};
    this.onstate = options.onstate || function () {};
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.timer = null;
    var self = this;
    window.addEventListener("online", function () { self.retryNow(); });
    window.addEventListener("offline", function () { self.drop(); });
    this.connect();
  }

  ReconnectingSocket.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + this.path;
  };

  ReconnectingSocket.prototype.setState = function (state) {
    this.state = state;
    this.onstate(state);
  };

  ReconnectingSocket.prototype.connect = function () {
    var self = this;
    if (this.stopped) return;
    if (navigator.onLine === false) { this.setState("offline"); this.schedule(); return; }
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    var ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = function () { self.attempt = 0; self.setState("connected"); self.onopen(); };
    ws.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (err) { return; }
      self.onmessage(data);
    };
    ws.onclose = function (event) {
      if (self.ws !== ws) return;
      self.ws = null;
      if (event.code === 4401 || event.code === 4403) { self.stopped = true; self.setState("closed"); return; }
      // 4503: this server is restarting; another one (or this one, back) takes the socket now,
      // each client within its own second so they do not all arrive at once.
      if (event.code === 4503) self.attempt = 0;
      self.schedule();
    };
  };

  ReconnectingSocket.prototype.schedule = function () {
    var self = this;
    if (this.stopped || this.timer) return;
    var cap = Math.min(30000, 1000 * Math.pow(2, this.attempt));
    var delay = Math.random() * cap;
    this.attempt += 1;
    this.setState(navigator.onLine === false ? "offline" : "reconnecting");
    this.timer = setTimeout(function () { self.timer = null; self.connect(); }, delay);
  };

  // Offline: let the socket go. Browsers keep a socket open through a network change, often dead
  // (or holding frames back), so "offline" would show until it timed out minutes later; back
  // online, a fresh socket resumes from the last message held.
  ReconnectingSocket.prototype.drop = function () {
    if (this.stopped) return;
    var ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close();
    }
    this.schedule();
  };

  ReconnectingSocket.prototype.retryNow = function () {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (!this.ws) { this.attempt = 0; this.connect(); }
  };

  ReconnectingSocket.prototype.send = function (data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(data)); return true; }
    return false;
  };

  // Shows the state in an element whose data-* attributes hold the words for each state.
  ReconnectingSocket.showState = function (element) {
    return function (state) {
      if (!element) return;
      element.className = "conn conn-" + state;
      element.textContent = element.dataset[state] || state;
    };
  };

  // Whether a person is at work inside `node`: the focus is there, a field holds something other
  // than what the server rendered, a file is chosen, or a section they opened (<details>) is open.
  function inUse(node) {
    if (node.nodeType !== 1) return false;
    if (node.contains(document.activeElement) && document.activeElement !== document.body) return true;
    if (node.matches("details[open]") || node.querySelector("details[open]")) return true;
    var fields = node.matches("input, textarea, select") ? [node] : node.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "hidden") continue;
      if (f.type === "file") { if (f.files && f.files.length) return true; continue; }
      if (f.type === "checkbox" || f.type === "radio") { if (f.checked !== f.defaultChecked) return true; continue; }
      if (f.tagName === "SELECT") {
        for (var j = 0; j < f.options.length; j++) if (f.options[j].selected !== f.options[j].defaultSelected) return true;
        continue;
      }
      if (f.value !== f.defaultValue) return true;
    }
    return false;
  }

  // Bring `old` up to date with `fresh` without touching what a person is working on: a subtree
  // nobody is using is replaced whole; one in use is walked into, child by child (matched by id,
  // else by position and tag), and a form in use is left exactly as it is (its fresh copy would
  // come back empty: the address half typed in the home-visit form when the doctor accepted).
  function patch(old, fresh) {
    if (!inUse(old)) { old.replaceWith(fresh); return; }
    if (old.tagName === "FORM" || old.tagName !== fresh.tagName || old.matches("input, textarea, select")) return;
    var olds = Array.prototype.slice.call(old.children);
    var freshes = Array.prototype.slice.call(fresh.children);
    var used = [];
    freshes.forEach(function (f, index) {
      var match = f.id ? olds.filter(function (o) { return o.id === f.id; })[0] : null;
      if (!match && !f.id) {
        var candidate = olds[index];
        if (candidate && !candidate.id && candidate.tagName === f.tagName) match = candidate;
      }
      if (match) { used.push(match); patch(match, f); }
      else {
        // New here: after the last one placed, so the order follows the server's.
        var anchor = used.length ? used[used.length - 1] : null;
        if (anchor) anchor.after(f); else old.insertBefore(f, old.firstElementChild);
        used.push(f);
      }
    });
    // Gone from the server's page: dropped, unless someone is still at work in it.
    olds.forEach(function (o) { if (used.indexOf(o) < 0 && !inUse(o)) o.remove(); });
  }

  // Re-fetch this page and patch every [data-live] region: the server renders, the page follows.
  // A change announced while a fetch is under way may be missing from its answer (resolved then
  // closed within a second): fetch once more after it.
  var refreshing = null;
  var again = false;
  ReconnectingSocket.refreshLive = function () {
    if (refreshing) { again = true; return; }
    refreshing = setTimeout(function () {
      again = false;
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live]").forEach(function (region) {
            var fresh = region.id && doc.getElementById(region.id);
            if (fresh) patch(region, fresh);
          });
        })
        .catch(function () {})
        .then(function () {
          refreshing = null;
          if (again) ReconnectingSocket.refreshLive();
        });
    }, 300);
  };

  window.ReconnectingSocket = ReconnectingSocket;
})();
