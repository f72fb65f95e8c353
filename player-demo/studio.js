// The studio: sign in with the admin token (every broadcast) or a host token (its
// own broadcast only); list broadcasts by state with search; create or schedule one
// with a poster; per broadcast the OBS/WHIP settings, key rotation, end, links, and
// the live health charts, refreshed every second. User text goes in with textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "onair-studio-token";
  const state = { token: null, admin: false, broadcasts: [], selected: null, keyShown: false, charts: null,
                  healthFor: null, timer: null, listTimer: null, recordings: {} };
  window.onairStudio = state;

  // --- HTTP ----------------------------------------------------------------------
  async function api(method, path, body, raw) {
    const init = { method, headers: { Authorization: "Bearer " + state.token }, cache: "no-store" };
    if (raw !== undefined) { init.body = raw; if (raw.type) init.headers["Content-Type"] = raw.type; }
    else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    const res = await fetch(path, init);
    let doc = null;
    try { doc = await res.json(); } catch (e) { doc = null; }
    if (!res.ok) {
      const err = new Error((doc && doc.error) || res.status + " " + res.statusText);
      err.status = res.status;
      throw err;
    }
    return doc;
  }

  // --- sign in -------------------------------------------------------------------
  function showLogin(message) {
    $("login").hidden = false;
    $("studio").hidden = true;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("login-error").textContent = message || "";
  }

  async function signIn(token) {
    state.token = token;
    try {
      const all = await api("GET", "/api/broadcasts");
      state.admin = true;
      state.broadcasts = all.broadcasts;
    } catch (err) {
      if (err.status !== 401) { showLogin("The node did not answer: " + err.message); return; }
      try {
        const mine = await api("GET", "/api/host/broadcast");
        state.admin = false;
        state.broadcasts = [mine];
        state.selected = mine.id;
      } catch (err2) {
        state.token = null;
        try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
        showLogin("That token is neither this node's admin token nor a host token.");
        return;
      }
    }
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
    $("login").hidden = true;
    $("studio").hidden = false;
    $("sign-out").hidden = false;
    $("who").textContent = state.admin ? "signed in as admin" : "signed in as the host of one broadcast";
    $("create-box").hidden = !state.admin;
    $("search").hidden = !state.admin;
    renderList();
    if (state.selected) select(state.selected);
    clearInterval(state.listTimer);
    state.listTimer = setInterval(refreshList, 3000);
    clearInterval(state.timer);
    state.timer = setInterval(tick, 1000);
  }

  function signOut() {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    clearInterval(state.timer);
    clearInterval(state.listTimer);
    state.token = null; state.selected = null; state.broadcasts = [];
    $("detail").hidden = true;
    showLogin("");
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("login-token").value.trim();
    $("login-token").value = "";
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", signOut);

  // --- the list ------------------------------------------------------------------
  const GROUPS = [["live", "Live", (s) => s === "live" || s === "reconnecting"],
                  ["scheduled", "Scheduled", (s) => s === "idle"],
                  ["ended", "Ended", (s) => s === "ended"]];

  async function refreshList() {
    try {
      if (state.admin) state.broadcasts = (await api("GET", "/api/broadcasts")).broadcasts;
      else state.broadcasts = [await api("GET", "/api/host/broadcast")];
      renderList();
    } catch (err) {
      if (err.status === 401) signOut();
    }
  }

  function when(b) {
    if (b.status === "live" || b.status === "reconnecting") return "live since " + time(b.started_at);
    if (b.status === "ended") return "ended " + time(b.ended_at);
    return b.scheduled_start ? "scheduled " + time(b.scheduled_start) : "not scheduled";
  }

  function time(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleString() : "?";
  }

  function renderList() {
    const query = ($("search").value || "").trim().toLowerCase();
    const lists = $("lists");
    lists.textContent = "";
    for (const [key, label, test] of GROUPS) {
      const items = state.broadcasts.filter((b) => test(b.status) &&
        (!query || b.title.toLowerCase().includes(query) || (b.description || "").toLowerCase().includes(query) ||
         b.id.includes(query)));
      if (key === "scheduled") items.sort((a, b) => (a.scheduled_start || 9e12) - (b.scheduled_start || 9e12));
      else items.sort((a, b) => (b.started_at || b.created_at) - (a.started_at || a.created_at));
      const heading = document.createElement("h2");
      heading.textContent = label + " (" + items.length + ")";
      const ul = document.createElement("ul");
      ul.id = "list-" + key;
      for (const b of items) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.id = b.id;
        if (b.id === state.selected) button.className = "selected";
        const title = document.createElement("span");
        title.className = "title";
        title.textContent = b.title;
        const sub = document.createElement("span");
        sub.className = "when";
        sub.textContent = when(b);
        button.append(title, sub);
        button.addEventListener("click", () => select(b.id));
        li.append(button);
        ul.append(li);
      }
      lists.append(heading, ul);
    }
    if (state.selected) renderDetail();
  }

  $("search").addEventListener("input", renderList);

  // --- create / schedule -----------------------------------------------------------
  $("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("create-error").textContent = "";
    const body = { title: $("new-title").value.trim(), description: $("new-description").value,
                   visibility: $("new-visibility").value };
    const start = $("new-start").value;
    if (start) body.scheduled_start = new Date(start).getTime() / 1000;
    let created;
    try {
      created = await api("POST", "/api/broadcasts", body);
    } catch (err) { $("create-error").textContent = err.message; return; }
    const file = $("new-poster").files[0];
    if (file) {
      try { created = Object.assign(created, await api("PUT", "/api/broadcasts/" + created.id + "/poster", undefined, file)); }
      catch (err) { $("create-error").textContent = "Created, but the poster was refused: " + err.message; }
    }
    $("create-form").reset();
    if (!$("create-error").textContent) $("create-box").open = false;
    await refreshList();
    select(created.id);
  });

  // --- edit (title, description, schedule while idle, poster) ---------------------
  function localInput(seconds) {   // Unix seconds -> the value of a datetime-local input, in local time
    if (!seconds) return "";
    const d = new Date(seconds * 1000), p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  $("edit-box").addEventListener("toggle", () => {
    const b = current();
    if (!b || !$("edit-box").open) return;
    $("edit-title").value = b.title;
    $("edit-description").value = b.description || "";
    $("edit-start").value = localInput(b.scheduled_start);
    $("edit-start").disabled = b.status !== "idle";
    $("edit-error").textContent = "";
  });

  $("edit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const b = current();
    if (!b) return;
    const body = { title: $("edit-title").value.trim(), description: $("edit-description").value };
    if (b.status === "idle") {
      body.scheduled_start = $("edit-start").value ? new Date($("edit-start").value).getTime() / 1000 : null;
    }
    try {
      Object.assign(b, await api("PATCH", "/api/broadcasts/" + b.id, body));
      const file = $("edit-poster").files[0];
      if (file) Object.assign(b, await api("PUT", "/api/broadcasts/" + b.id + "/poster", undefined, file));
    } catch (err) { $("edit-error").textContent = err.message; return; }
    $("edit-form").reset();
    $("edit-box").open = false;
    $("d-message").textContent = "saved";
    renderList();
  });

  // --- one broadcast ---------------------------------------------------------------
  function current() { return state.broadcasts.find((b) => b.id === state.selected) || null; }

  function select(id) {
    if (state.selected !== id) {
      state.keyShown = false; resetCharts(); $("edit-box").open = false; $("simulcast").textContent = ""; ticks = 0;
    }
    state.selected = id;
    for (const button of document.querySelectorAll("#lists button")) {
      button.classList.toggle("selected", button.dataset.id === id);
    }
    renderDetail();
    tick();
  }

  function link(label, href, id) {
    const a = document.createElement("a");
    a.textContent = label;
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener";
    a.id = id;
    return a;
  }

  function renderDetail() {
    const b = current();
    $("detail").hidden = !b;
    if (!b) return;
    $("d-title").textContent = b.title;
    const pill = $("d-status");
    pill.textContent = { idle: b.scheduled_start ? "scheduled" : "idle", live: "LIVE", reconnecting: "reconnecting",
                         ended: "ended" }[b.status] || b.status;
    pill.className = "state-pill " + b.status;
    $("d-schedule").textContent = b.status === "idle" && b.scheduled_start ? "starts " + time(b.scheduled_start) : "";
    $("d-description").textContent = b.description || "";
    const poster = $("d-poster");
    if (b.poster_url) { if (poster.getAttribute("src") !== b.poster_url) poster.src = b.poster_url; poster.hidden = false; }
    else poster.hidden = true;
    const links = $("d-links");
    links.textContent = "";
    links.append(link(b.status === "ended" ? "Replay (watch page)" : "Watch page", b.watch_url, "link-watch"),
                 link("Moderation console", b.console_url, "link-console"));
    if (b.status === "ended") {
      // the recording (GET /api/broadcasts/<id>/recording): its MP4 once made, its state until then
      const recording = state.recordings[b.id];
      if (recording && recording.mp4_url) {
        links.append(link("Recording (MP4)", recording.mp4_url, "link-recording"));
      } else {
        const note = document.createElement("span");
        note.id = "recording-status";
        note.className = "muted";
        note.textContent = "recording: " + (recording ? recording.status : "…");
        links.append(note);
      }
    }
    if (b.status !== "ended" && state.admin && b.stream_key) {
      links.append(link("Go live from the browser", b.golive_url + "#key=" + encodeURIComponent(b.stream_key),
                        "link-golive"));
    }
    $("d-server").value = b.rtmp_url;
    $("d-whip").value = b.whip_url;
    const key = $("d-key");
    if (b.stream_key) {
      key.value = b.stream_key;
      key.type = state.keyShown ? "text" : "password";
      $("reveal-key").textContent = state.keyShown ? "Hide" : "Reveal";
      $("reveal-key").disabled = false;
    } else {
      key.value = "(the admin has it)";
      key.type = "text";
      $("reveal-key").disabled = true;
    }
    $("rotate-key").hidden = !state.admin || b.status === "ended";
    $("end-broadcast").hidden = b.status === "ended";
  }

  $("reveal-key").addEventListener("click", () => { state.keyShown = !state.keyShown; renderDetail(); });

  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const value = $(button.dataset.copy).value;
      try { await navigator.clipboard.writeText(value); $("d-message").textContent = "copied"; }
      catch (e) {
        const input = $(button.dataset.copy);   // no clipboard permission: select it for Ctrl+C
        input.type = "text"; input.select();
        $("d-message").textContent = "selected: press Ctrl+C";
      }
    });
  }

  $("rotate-key").addEventListener("click", async () => {
    const b = current();
    if (!b || !confirm("Rotate the stream key? The publisher using the old key is disconnected.")) return;
    try {
      const rotated = await api("POST", "/api/broadcasts/" + b.id + "/rotate-key");
      Object.assign(b, rotated);
      $("d-message").textContent = "new stream key issued";
      renderDetail();
    } catch (err) { $("d-message").textContent = err.message; }
  });

  $("end-broadcast").addEventListener("click", async () => {
    const b = current();
    if (!b || !confirm("End this broadcast now? It cannot go live again.")) return;
    try {
      Object.assign(b, await api("POST", "/api/broadcasts/" + b.id + "/end"));
      $("d-message").textContent = "ended";
      renderList();
    } catch (err) { $("d-message").textContent = err.message; }
  });

  // --- live health -------------------------------------------------------------------
  const SERIES = [
    ["ingest_bitrate", "Ingest bitrate", (v) => (v / 1e6).toFixed(2) + " Mbit/s"],
    ["fps", "Frames per second", (v) => v.toFixed(1)],
    ["keyframe_interval", "Keyframe interval", (v) => v.toFixed(1) + " s"],
    ["dropped_units", "Dropped units", (v) => String(v)],
    ["transcoder_speed", "Transcoder speed", (v) => v.toFixed(2) + "×"],
    ["publish_to_playlist", "Publish → playlist", (v) => (v * 1000).toFixed(0) + " ms"],
    ["viewers", "Viewers", (v) => String(v)],
    ["comments_per_minute", "Comments / min", (v) => String(v)],
  ];

  function resetCharts() {
    if (!state.charts) {
      state.charts = {};
      for (const [key, label, format] of SERIES) {
        state.charts[key] = new OnairCharts.Chart($("charts"), key.replace(/_/g, "-"), label, format);
      }
    }
    for (const chart of Object.values(state.charts)) chart.reset();
    $("warnings").textContent = "";
  }

  // The broadcast's simulcast targets (GET /api/broadcasts/<id>/simulcast): name, destination, status.
  async function showTargets(b) {
    let targets;
    try { targets = (await api("GET", "/api/broadcasts/" + b.id + "/simulcast")).targets; }
    catch (err) { return; }
    if (state.selected !== b.id) return;
    const list = $("simulcast");
    list.textContent = "";
    if (!targets.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No simulcast targets.";
      list.append(li);
    }
    for (const t of targets) {
      const li = document.createElement("li");
      li.dataset.target = t.id;
      const status = document.createElement("span");
      const value = t.enabled ? (t.status || "idle") : "disabled";
      status.className = "target-status " + value;
      status.textContent = value;
      const name = document.createElement("span");
      name.textContent = t.name + " · " + t.url + (t.last_error ? " · " + t.last_error : "");
      li.append(status, name);
      list.append(li);
    }
  }

  let ticks = 0;
  async function tick() {
    const b = current();
    if (!b || !state.token) return;
    if (ticks++ % 3 === 0) showTargets(b);
    if (b.status === "ended" && !(state.recordings[b.id] && state.recordings[b.id].mp4_url)) {
      try {
        state.recordings[b.id] = await api("GET", "/api/broadcasts/" + b.id + "/recording");
        renderDetail();
      } catch (err) { /* not there yet, or deleted: the next tick asks again */ }
    }
    let health;
    try { health = await api("GET", "/api/broadcasts/" + b.id + "/health"); }
    catch (err) { return; }
    if (state.selected !== b.id) return;
    if (!state.charts) resetCharts();
    if (health.status !== b.status) { b.status = health.status; refreshList(); }
    if (health.status === "live" || health.status === "reconnecting") {
      for (const [key] of SERIES) state.charts[key].push(health[key]);
    }
    const list = $("warnings");
    list.textContent = "";
    for (const w of health.warnings) {
      const li = document.createElement("li");
      li.dataset.code = w.code;
      li.textContent = w.message;
      list.append(li);
    }
  }

  // --- start -------------------------------------------------------------------------
  let saved = null;
  try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* private mode */ }
  if (saved) signIn(saved); else showLogin("");
})();
