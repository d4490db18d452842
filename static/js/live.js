// Queue pages and the coordinator dashboard: refresh their live regions when the queue changes.
(function () {
  "use strict";
  var feed = document.querySelector("[data-live-feed]");
  if (!feed || !window.WebSocket) return;
  var state = document.getElementById("conn-state");
  var socket = new window.ReconnectingSocket(feed.dataset.liveFeed, {
    onstate: window.ReconnectingSocket.showState(state),
    onopen: function () { window.ReconnectingSocket.refreshLive(); },
    onmessage: function (data) { if (data.type === "refresh") window.ReconnectingSocket.refreshLive(); }
  });
  setInterval(function () { socket.send({ type: "ping" }); }, 25000);
})();
