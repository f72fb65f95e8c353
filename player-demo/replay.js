// The watch page of an ended broadcast: the recording's poster before play, and the chat replayed
// in time. Each comment of /api/broadcasts/<id>/recording/chat carries its moment in the video (t,
// seconds); a comment is shown once playback reaches it and hidden again when the viewer seeks back
// before it. Questions have their own list; reactions are a strip under the video, one mark per
// second that had any, placed at its moment. Removed and erased comments are not in the replay
// (the server leaves them out), and the list is read again now and then, so one removed while
// somebody watches goes too. User text only ever goes in with textContent.
"use strict";
(function () {
  const broadcastId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const grant = new URLSearchParams(location.hash.slice(1)).get("grant");
  const video = document.getElementById("video");
  const els = {
    panel: document.getElementById("replay"),
    live: document.getElementById("chat"),
    comments: document.getElementById("replay-comments"),
    questions: document.getElementById("replay-questions"),
    strip: document.getElementById("reaction-strip"),
  };
  const ICON = { like: "\u{1F44D}", celebrate: "\u{1F44F}", love: "\u2764\uFE0F", insightful: "\u{1F4A1}",
                 curious: "\u{1F914}" };
  const REFRESH_MS = 15000;
  const replay = { ready: false, recording: null, entries: [], items: new Map(), duration: 0 };
  window.onairReplay = replay;

  async function getJson(url) {
    const headers = grant ? { Authorization: "Bearer " + grant } : {};
    const res = await fetch(url, { cache: "no-store", headers });
    if (!res.ok) throw new Error(url + ": " + res.status);
    return res.json();
  }

  function commentItem(entry) {
    const li = document.createElement("li");
    li.dataset.id = entry.id;
    li.dataset.t = String(entry.t);
    if (entry.question) li.className = "question";
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = clock(entry.t);
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = (entry.author && entry.author.name) || "viewer";
    const text = document.createElement("span");
    text.textContent = entry.text || "";
    li.append(at, author, text);
    li.hidden = true;
    return li;
  }

  function clock(t) {
    const s = Math.max(0, Math.floor(t));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function render(entries) {
    const keep = new Set();
    for (const entry of entries) {
      if (entry.type !== "comment") continue;
      keep.add(entry.id);
      if (replay.items.has(entry.id)) continue;
      const li = commentItem(entry);
      replay.items.set(entry.id, { entry, li });
      (entry.question ? els.questions : els.comments).append(li);
    }
    for (const [id, item] of replay.items) {
      if (!keep.has(id)) { item.li.remove(); replay.items.delete(id); }   // removed meanwhile
    }
    renderStrip(entries.filter((e) => e.type === "reactions"));
    replay.entries = entries;
    update();
  }

  function renderStrip(seconds) {
    els.strip.textContent = "";
    const duration = replay.duration || video.duration || 1;
    const peak = Math.max(1, ...seconds.map((s) => Object.values(s.counts).reduce((a, b) => a + b, 0)));
    for (const second of seconds) {
      const total = Object.values(second.counts).reduce((a, b) => a + b, 0);
      const top = Object.entries(second.counts).sort((a, b) => b[1] - a[1])[0];
      const mark = document.createElement("span");
      mark.className = "reaction-mark";
      mark.dataset.t = String(second.t);
      mark.style.left = (100 * second.t / duration).toFixed(2) + "%";
      mark.style.height = (30 + 70 * total / peak).toFixed(0) + "%";
      const described = Object.entries(second.counts).map(([k, n]) => (ICON[k] || k) + " " + n);
      mark.title = clock(second.t) + " · " + described.join(" ");
      mark.textContent = top ? (ICON[top[0]] || "") : "";
      els.strip.append(mark);
    }
  }

  // Show what was said up to the video's current moment, nothing after it.
  function update() {
    const now = video.currentTime || 0;
    let newest = null;
    for (const { entry, li } of replay.items.values()) {
      const due = entry.t <= now;
      if (li.hidden === due) {
        li.hidden = !due;
        if (due && (!newest || entry.t >= Number(newest.dataset.t))) newest = li;
      }
    }
    for (const mark of els.strip.children) mark.classList.toggle("past", Number(mark.dataset.t) <= now);
    if (newest && !newest.classList.contains("question")) els.comments.scrollTop = els.comments.scrollHeight;
  }

  async function load() {
    try {
      // the URLs the API hands a granted viewer carry the grant already
      render(await getJson(replay.recording.chat_url));
      replay.ready = true;
    } catch (err) {
      /* the next refresh tries again */
    }
  }

  async function start() {
    let recording;
    try {
      recording = await getJson("/api/broadcasts/" + encodeURIComponent(broadcastId) + "/recording" +
                                (grant ? "?grant=" + encodeURIComponent(grant) : ""));
    } catch (err) {
      return false;
    }
    if (recording.status === "deleted") return true;
    replay.recording = recording;
    replay.duration = recording.duration || 0;
    if (recording.poster_url && !video.poster) video.poster = recording.poster_url;
    els.panel.hidden = false;
    els.live.hidden = true;   // the conversation as it happened replaces the live chat's last comments
    await load();
    setInterval(load, REFRESH_MS);
    for (const event of ["timeupdate", "seeked", "seeking", "play"]) video.addEventListener(event, update);
    setInterval(update, 250);
    return true;
  }

  // Start once the broadcast is known to have ended (watch.js follows its status).
  const waiting = setInterval(async () => {
    const player = window.onairPlayer;
    if (!player || player.refused || player.status !== "ended") return;
    clearInterval(waiting);
    if (!(await start())) setTimeout(() => start(), 3000);
  }, 300);
})();
