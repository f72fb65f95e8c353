// The watch page's waiting room: before a broadcast goes live, its poster, title,
// description and a countdown to its scheduled start cover the player (the chat is
// open beside it). watch.js reports every status it polls ("onair:broadcast"); the
// room goes away by itself when the broadcast is live, and watch.js starts the video.
"use strict";
(function () {
  const room = document.getElementById("waiting");
  const poster = document.getElementById("waiting-poster");
  const title = document.getElementById("waiting-title");
  const description = document.getElementById("waiting-description");
  const countdown = document.getElementById("countdown");
  const grant = new URLSearchParams(location.hash.slice(1)).get("grant");
  const waiting = { shown: false, scheduledStart: null };
  window.onairWaiting = waiting;

  function pad(n) { return String(n).padStart(2, "0"); }

  function render() {
    if (!waiting.shown) return;
    if (!waiting.scheduledStart) { countdown.textContent = "Starts soon"; return; }
    let left = Math.round(waiting.scheduledStart - Date.now() / 1000);
    if (left <= 0) { countdown.textContent = "Starting any moment…"; return; }
    const days = Math.floor(left / 86400); left -= days * 86400;
    const hours = Math.floor(left / 3600); left -= hours * 3600;
    const minutes = Math.floor(left / 60), seconds = left - minutes * 60;
    countdown.textContent = "Starts in " + (days ? days + "d " : "") + pad(hours) + ":" + pad(minutes) + ":" + pad(seconds);
  }

  document.addEventListener("onair:broadcast", (ev) => {
    const doc = ev.detail;
    waiting.shown = doc.status === "idle";
    room.hidden = !waiting.shown;
    waiting.scheduledStart = doc.scheduled_start || null;
    title.textContent = doc.title;
    description.textContent = doc.description || "";
    if (doc.poster_url) {
      const src = doc.poster_url + (grant ? "&grant=" + encodeURIComponent(grant) : "");
      if (poster.getAttribute("src") !== src) poster.src = src;
      poster.hidden = false;
    } else {
      poster.hidden = true;
    }
    render();
  });
  setInterval(render, 1000);
})();
