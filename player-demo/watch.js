// The watch page's video half: follows the broadcast's status and plays its
// HLS with hls.js, recovering when the broadcaster drops and comes back.
// A restricted broadcast needs the playback grant its invitation link carries in
// the URL fragment (#token=...&grant=...; a fragment never reaches a server):
// the grant goes on the API call and the playlist URL, the token to the chat.
"use strict";
(function () {
  const broadcastId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const grant = new URLSearchParams(location.hash.slice(1)).get("grant");
  const video = document.getElementById("video");
  const stateBadge = document.getElementById("state");
  const title = document.getElementById("title");
  const latencyLabel = document.getElementById("latency");
  const notice = document.getElementById("notice");
  const player = { hls: null, status: "unknown", broadcastId, lowLatency: false, refused: null };
  window.onairPlayer = player;

  // Playback is refused for good (no such broadcast, no grant, a grant that no longer works):
  // say why, stop playing and stop asking.
  function refuse(message) {
    player.refused = message;
    stopPlayer();
    video.removeAttribute("src");
    setState("unavailable");
    notice.textContent = message;
    notice.hidden = false;
  }

  function setState(status) {
    player.status = status;
    const label = { live: "LIVE", reconnecting: "reconnecting…", ended: "ended (replay)", idle: "offline" }[status] || status;
    stateBadge.textContent = label;
    stateBadge.className = "state-badge state-" + status;
  }

  function hlsUrl() {
    const url = "/hls/" + encodeURIComponent(broadcastId) + "/master.m3u8";
    return grant ? url + "?grant=" + encodeURIComponent(grant) : url;
  }

  function startPlayer() {
    stopPlayer();
    if (window.Hls && Hls.isSupported()) {
      // No liveSync* option: with one set, hls.js ignores the playlist's PART-HOLD-BACK. Without
      // LL-HLS it plays 3 target durations behind the edge (its default).
      // maxLiveSyncPlaybackRate: playback may run up to 10 % fast to get back to the target latency
      // after start-up or a stall (hls.js's default, 1, never catches up).
      const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.1, manifestLoadingMaxRetry: 6,
                            levelLoadingMaxRetry: 6, fragLoadingMaxRetry: 6 });
      player.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
      // LL-HLS is on when the playlists carry parts (hls.js then plays PART-HOLD-BACK behind the edge).
      hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => {
        player.lowLatency = !!(data.details && data.details.partList && data.details.partList.length);
      });
      hls.on(Hls.Events.ERROR, (_e, data) => {
        const code = data.response && data.response.code;
        if (code === 401 || code === 403) {
          // The origin refused the grant (expired, revoked, banned): retrying will not help. hls.js
          // keeps no error body; the API says why (poll shows it), or else a plain message.
          stopPlayer();
          poll().then(() => { if (!player.refused) refuse("You can no longer watch this broadcast."); });
          return;
        }
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); return; }
        // Network trouble or a playlist that is not there yet: start again shortly.
        stopPlayer();
        setTimeout(() => { if (!player.hls && player.status !== "idle") startPlayer(); }, 2000);
      });
      hls.loadSource(hlsUrl());
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = hlsUrl();
      video.play().catch(() => {});
    }
  }

  function stopPlayer() {
    if (player.hls) { player.hls.destroy(); player.hls = null; }
  }

  let lastTime = 0, stalledFor = 0;
  async function poll() {
    if (player.refused) return;
    try {
      const headers = grant ? { Authorization: "Bearer " + grant } : {};
      const res = await fetch("/api/public/broadcasts/" + encodeURIComponent(broadcastId),
                              { cache: "no-store", headers });
      if (res.status === 404) {
        // The same answer for a broadcast that does not exist and a restricted one without a grant.
        title.textContent = "No such broadcast";
        refuse(grant ? "This broadcast does not exist, or this invitation link is not for it."
                     : "This broadcast does not exist, or it is private: open it with the invitation " +
                       "link you were sent.");
        return;
      }
      if (res.status === 401 || res.status === 403) {
        const body = await res.json().catch(() => ({}));
        refuse("You can no longer watch this broadcast: " + (body.error || "access refused") + ".");
        return;
      }
      const doc = await res.json();
      title.textContent = doc.title;
      document.dispatchEvent(new CustomEvent("onair:broadcast", { detail: doc }));   // the waiting room (waiting.js)
      const previous = player.status;
      setState(doc.status);
      if ((doc.status === "live" || doc.status === "ended") && !player.hls) startPlayer();
      if (doc.status === "live" && previous === "reconnecting") {
        // The broadcaster is back: if playback stalled meanwhile, reload the playlists.
        if (video.currentTime === lastTime) startPlayer();
      }
      if (doc.status === "live" && player.hls) {
        stalledFor = video.currentTime === lastTime ? stalledFor + 1 : 0;
        if (stalledFor >= 5) { stalledFor = 0; startPlayer(); }
      }
      lastTime = video.currentTime;
    } catch (err) {
      setState("unknown");
    }
  }

  // The live latency as hls.js measures it: how far playback is behind the playlist's live edge.
  function showLatency() {
    const hls = player.hls;
    const latency = hls && player.status === "live" ? hls.latency : NaN;
    if (typeof latency === "number" && isFinite(latency) && latency > 0) {
      player.latency = latency;
      latencyLabel.textContent = "latency " + latency.toFixed(1) + " s" + (player.lowLatency ? " · LL-HLS" : "");
    } else {
      player.latency = null;
      latencyLabel.textContent = "";
    }
  }
  poll();
  setInterval(poll, 2000);
  setInterval(showLatency, 500);
})();
