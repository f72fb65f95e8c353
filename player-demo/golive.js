// The go-live page: a plain WHIP client (RFC 9725).  It captures camera + mic
// (or the screen), offers sendonly tracks with every ICE candidate included
// (no trickle), POSTs the offer to /whip/<id> with the stream key as bearer
// token, applies the answer and DELETEs the session on Stop.  A connection
// that fails while live is re-published (same broadcast, the node treats it as
// a reconnect).  State is exposed on window.onairGoLive for tests.
"use strict";
(function () {
  const broadcastId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const $ = (id) => document.getElementById(id);
  const preview = $("preview"), badge = $("badge"), statusLine = $("status");
  const keyInput = $("stream-key"), sourceSelect = $("source"), goButton = $("go-live"), stopButton = $("stop");
  const MAX_RETRIES = 5;

  const state = {
    broadcastId, state: "idle", reason: "", sessionUrl: null, pc: null, stream: null,
    retries: 0, iceServers: [], start: goLive, stop: stop,
  };
  window.onairGoLive = state;
  $("broadcast-id").textContent = broadcastId;

  // A key passed as #key=... never reaches the server in a request line or a log.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("key")) keyInput.value = fragment.get("key");

  function setState(name, reason) {
    state.state = name;
    state.reason = reason || "";
    const text = { idle: "Ready.", connecting: "Connecting…", live: "You are live.",
                   reconnecting: "Connection lost, reconnecting…", stopped: "Stopped.",
                   error: "Error: " + state.reason }[name] || name;
    statusLine.textContent = text;
    statusLine.className = "status status-" + name;
    badge.textContent = name === "live" ? "LIVE" : name;
    badge.className = "state-badge state-" + (name === "live" ? "live" : name === "reconnecting" ? "reconnecting" : "idle");
    const busy = name === "connecting" || name === "live" || name === "reconnecting";
    goButton.disabled = busy;
    stopButton.disabled = !busy;
    keyInput.disabled = busy;
    sourceSelect.disabled = busy;
  }

  async function capture(source) {
    if (source === "screen") {
      const screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: false });
      let mic = null;
      try { mic = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (e) { /* video only */ }
      return new MediaStream([...screen.getVideoTracks(), ...(mic ? mic.getAudioTracks() : [])]);
    }
    return navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }, audio: true });
  }

  function iceGatheringComplete(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); clearTimeout(timer); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, timeoutMs);  // send what was gathered so far
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function parseIceServers(response) {
    // Link: <stun:...>; rel="ice-server"; username="..."; credential="..."
    const servers = [];
    const header = response.headers.get("Link") || "";
    for (const part of header.split(/,(?=\s*<)/)) {
      const m = part.match(/<([^>]+)>/);
      if (!m || !/rel="ice-server"/.test(part)) continue;
      const server = { urls: m[1] };
      const user = part.match(/username="([^"]*)"/), cred = part.match(/credential="([^"]*)"/);
      if (user) server.username = decodeURIComponent(user[1]);
      if (cred) server.credential = decodeURIComponent(cred[1]);
      servers.push(server);
    }
    return servers;
  }

  async function errorReason(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error + " (" + response.status + ")";
    } catch (e) { /* not JSON */ }
    return "the server answered " + response.status;
  }

  async function publish() {
    const key = keyInput.value.trim();
    const pc = new RTCPeerConnection({ iceServers: state.iceServers, bundlePolicy: "max-bundle" });
    state.pc = pc;
    for (const track of state.stream.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [state.stream] });
    }
    pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc, 5000);
    const response = await fetch("/whip/" + encodeURIComponent(broadcastId), {
      method: "POST", body: pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp", "Authorization": "Bearer " + key },
    });
    if (response.status !== 201) {
      pc.close();
      state.pc = null;
      const error = new Error(await errorReason(response));
      error.status = response.status;
      throw error;
    }
    state.sessionUrl = new URL(response.headers.get("Location"), location.href).toString();
    const servers = parseIceServers(response);
    if (servers.length) state.iceServers = servers;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  }

  function onConnectionState(pc) {
    if (pc !== state.pc) return;
    if (pc.connectionState === "connected") {
      state.retries = 0;
      setState("live");
    } else if (pc.connectionState === "disconnected") {
      setState("reconnecting", "network");  // ICE may still recover by itself
    } else if (pc.connectionState === "failed") {
      reconnect();
    }
  }

  async function reconnect() {
    if (state.state === "stopped" || state.state === "idle") return;
    setState("reconnecting", "network");
    await endSession();
    if (state.retries >= MAX_RETRIES) {
      fail("the connection to the server was lost");
      return;
    }
    state.retries += 1;
    await new Promise((r) => setTimeout(r, 1000 * state.retries));
    if (state.state !== "reconnecting") return;
    try {
      await publish();
    } catch (e) {
      // 4xx other than a transient conflict will not get better by retrying
      if (e.status && e.status !== 409 && e.status !== 503) fail(e.message);
      else reconnect();
    }
  }

  async function endSession() {
    const url = state.sessionUrl, pc = state.pc;
    state.sessionUrl = null;
    state.pc = null;
    if (pc) pc.close();
    if (url) {
      try {
        await fetch(url, { method: "DELETE", keepalive: true, headers: { "Authorization": "Bearer " + keyInput.value.trim() } });
      } catch (e) { /* the server ends the session by itself when it stops hearing from us */ }
    }
  }

  function releaseMedia() {
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    preview.srcObject = null;
  }

  function fail(reason) {
    endSession();
    releaseMedia();
    setState("error", reason);
  }

  async function goLive(event) {
    if (event && event.preventDefault) event.preventDefault();
    if (!keyInput.value.trim()) { setState("error", "enter the stream key of this broadcast"); return; }
    setState("connecting");
    state.retries = 0;
    try {
      state.stream = await capture(sourceSelect.value);
    } catch (e) {
      setState("error", "no access to " + (sourceSelect.value === "screen" ? "the screen" : "camera/microphone") +
               ": " + (e.message || e.name));
      return;
    }
    preview.srcObject = state.stream;
    try {
      await publish();
    } catch (e) {
      fail(e.message || String(e));
    }
  }

  async function stop() {
    setState("stopped");
    await endSession();
    releaseMedia();
  }

  $("golive-form").addEventListener("submit", goLive);
  stopButton.addEventListener("click", stop);
  window.addEventListener("pagehide", () => { if (state.sessionUrl) endSession(); });
  setState("idle");
})();
