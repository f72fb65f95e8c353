// The chat over /ws/<broadcast id>, shared by the watch page and the moderation console:
//  - window.OnairChatSocket(broadcastId, options): the socket — hello (with `since` on a reconnect, so
//    nothing is missed and nothing repeats), comments kept in seq order, back-off reconnects;
//  - window.onairChatView: the pieces both pages render the same way (viewer count, text spans);
//  - the watch page's chat half (when the page has #comment-form): live comments, questions, the pinned
//    comment, the viewer count, the reaction bar and floating reactions.
// User text is only ever put in the page with textContent (never innerHTML).
// Protocol: docs/chat-protocol.md.
"use strict";
(function () {
  // options: hello(prepared) -> the hello document (without `since`); prepare() -> a promise run before each
  // socket opens (its value goes to hello); onMessage(msg); onClose(ev) -> null to stop, or the least delay
  // in ms before reconnecting (the back-off 0.5 s, 1 s, 2 s ... 10 s applies on top).
  window.OnairChatSocket = function (broadcastId, options) {
    const conn = { socket: null, connected: false, lastId: null, lastSeq: 0, retry: 0,
                   connect, sendHello, fresh, resetRetry: () => { conn.retry = 0; } };
    let prepared = null;

    function sendHello(socket) {
      const hello = options.hello(prepared);
      if (conn.lastId) hello.since = conn.lastId;   // only what we missed, no duplicates
      (socket || conn.socket).send(JSON.stringify(hello));
    }

    // True (and remembered) for a comment not shown yet.
    function fresh(comment) {
      if (comment.seq <= conn.lastSeq) return false;
      conn.lastSeq = comment.seq;
      conn.lastId = comment.id;
      return true;
    }

    function open() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(scheme + "//" + location.host + "/ws/" + encodeURIComponent(broadcastId));
      conn.socket = socket;
      socket.addEventListener("open", () => sendHello(socket));
      socket.addEventListener("message", (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === "history") { conn.retry = 0; conn.connected = true; }
        options.onMessage(msg);
      });
      socket.addEventListener("close", closed);
    }

    function closed(ev) {
      conn.connected = false;
      const least = options.onClose ? options.onClose(ev || {}) : 0;
      if (least === null) return;
      setTimeout(connect, Math.max(least || 0, Math.min(10000, 500 * Math.pow(2, conn.retry++))));
    }

    function connect() {
      if (!options.prepare) { open(); return; }
      options.prepare().then((value) => { prepared = value; open(); }).catch(() => closed(null));
    }

    return conn;
  };

  window.onairChatView = {
    viewers: (count) => count + (count === 1 ? " viewer" : " viewers"),
    span(cls, text) {
      const s = document.createElement("span");
      s.className = cls;
      s.textContent = text;
      return s;
    },
    authorName: (c) => (c && c.author && c.author.name ? c.author.name : "?"),
    cssEscape(value) {
      return window.CSS && CSS.escape ? CSS.escape(value) : String(value).replace(/["\\]/g, "\\$&");
    },
  };
})();

if (document.getElementById("comment-form")) (function () {
  const broadcastId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const els = {
    viewers: document.getElementById("viewers"),
    pinned: document.getElementById("pinned"),
    comments: document.getElementById("comments"),
    form: document.getElementById("comment-form"),
    name: document.getElementById("name"),
    text: document.getElementById("comment-text"),
    question: document.getElementById("comment-question"),
    status: document.getElementById("chat-status"),
    bar: document.getElementById("reaction-bar"),
    layer: document.getElementById("reaction-layer"),
  };
  // Icons are inline SVG (icons.js), never emoji: those need a font many systems lack.
  const KINDS = ["like", "celebrate", "love", "insightful", "curious"];
  const KNOWN = new Set(KINDS);
  const ROLE_BADGE = Object.assign(Object.create(null), { host: "HOST", moderator: "MOD" });
  const MAX_SHOWN = 200;          // comments kept in the list
  const MAX_FLOATING = 30;        // floating icons on screen at once
  // A viewer token (restricted broadcasts) comes in the URL fragment: #token=...
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  // Without one, the chat gives this viewer an anonymous identity (history.you.token): kept here and
  // presented on every later hello, so the viewer stays the same one across reloads and reconnects.
  const identityKey = "onair-identity:" + broadcastId;

  const view = window.onairChatView;

  let helloName = null;
  let sentIdentity = false;
  let renamed = "";

  const chat = Object.assign(window.OnairChatSocket(broadcastId, { hello, onMessage: handle, onClose }),
                             { you: null, totals: {}, outbox: [], banned: false, send, react });
  window.onairChat = chat;

  function setStatus(text) { els.status.textContent = text || ""; }

  function stored(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; /* private mode */ }
  }

  function store(key, value) {
    try { if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }

  function hello() {
    if (helloName === null) helloName = currentName();
    const doc = { type: "hello" };
    const identity = token ? null : stored(identityKey);
    sentIdentity = !!identity;
    if (token) doc.token = token; else { doc.name = helloName; if (identity) doc.token = identity; }
    return doc;
  }

  function guestName() { return "guest-" + Math.random().toString(36).slice(2, 6); }

  function currentName() {
    const typed = (els.name.value || "").trim();
    if (typed) return typed.slice(0, 40);
    return stored("onair-name") || guestName();
  }

  function onClose(ev) {
    helloName = null;   // the next hello takes the name typed by then
    if (ev.code === 4001 && sentIdentity && !token) {
      // The kept identity is no longer valid (expired, or the node's secret changed): start afresh.
      store(identityKey, null);
    } else if (ev.code === 4001 || ev.code === 4004) { setStatus("chat unavailable (" + ev.reason + ")"); return null; }
    if (ev.code === 4003) { chat.banned = true; setStatus("You are banned from this chat."); return null; }
    // Back off (at least 5 s past a quota), and resume with `since`.
    setStatus(ev.code === 4029 ? "too many connections from your network; retrying…" : "reconnecting…");
    return ev.code === 4029 ? 5000 : 0;
  }

  function handle(msg) {
    switch (msg.type) {
      case "history":
        chat.you = msg.you;
        if (msg.you && msg.you.token) store(identityKey, msg.you.token);
        setStatus(renamed);
        renamed = "";
        if (!chat.lastId) els.comments.textContent = "";
        msg.comments.forEach(addComment);
        flushOutbox();
        break;
      case "comment": addComment(msg); break;
      case "comment_removed": {
        const li = els.comments.querySelector('li[data-comment-id="' + view.cssEscape(msg.id) + '"]');
        if (li) li.remove();
        if (els.pinned.dataset.commentId === msg.id) showPinned(null);
        break;
      }
      case "pinned": showPinned(msg.comment); break;
      case "viewers":
        els.viewers.textContent = view.viewers(msg.count);
        break;
      case "reactions":
        chat.totals = msg.totals || {};
        for (const [kind, n] of Object.entries(msg.counts || {})) {
          for (let i = 0; i < Math.min(n, 5); i++) floatIcon(kind);
        }
        updateBarTotals();
        break;
      case "error":
        if (msg.code === "name_reserved" && !chat.connected && chat.socket) {
          // Not ours to use: join as a guest instead, and say why once joined.
          store("onair-name", null);
          helloName = guestName();
          renamed = msg.message + " (you are " + helloName + ")";
          chat.sendHello();
          break;
        }
        setStatus(msg.code === "held_for_review" ? "Your comment is held for review."
                  : msg.message || msg.code);
        break;
    }
  }

  function addComment(c) {
    if (!chat.fresh(c)) return;   // already shown
    const li = document.createElement("li");
    li.dataset.commentId = c.id;
    if (c.question) li.classList.add("question");
    const author = view.span("author", view.authorName(c));
    const text = view.span("text", c.text);
    const role = c.author && ROLE_BADGE[c.author.role];   // verified by the server: host or moderator
    if (role) {
      const badge = view.span("role role-" + c.author.role, role);
      li.classList.add("by-" + c.author.role);
      li.append(badge);
    }
    li.append(author, text);
    const atBottom = els.comments.scrollHeight - els.comments.scrollTop - els.comments.clientHeight < 40;
    els.comments.append(li);
    while (els.comments.children.length > MAX_SHOWN) els.comments.firstElementChild.remove();
    if (atBottom) els.comments.scrollTop = els.comments.scrollHeight;
  }

  function showPinned(c) {
    if (!c) { els.pinned.hidden = true; els.pinned.textContent = ""; delete els.pinned.dataset.commentId; return; }
    els.pinned.textContent = "";
    const label = document.createElement("strong");
    label.append(onairIcons.icon("pin", 16), (c.author && c.author.name ? c.author.name : "") + ": ");
    const text = document.createElement("span");
    text.textContent = c.text;
    els.pinned.append(label, text);
    els.pinned.dataset.commentId = c.id;
    els.pinned.hidden = false;
  }

  function floatIcon(kind) {
    if (!KNOWN.has(kind) || els.layer.childElementCount >= MAX_FLOATING) return;
    const span = document.createElement("span");
    span.className = "floating-reaction";
    span.dataset.kind = kind;
    span.append(onairIcons.icon(kind, 30));
    span.style.left = (70 + Math.random() * 25) + "%";
    span.addEventListener("animationend", () => span.remove());
    setTimeout(() => span.remove(), 3000);   // also when animations are off
    els.layer.append(span);
  }

  function buildBar() {
    for (const kind of KINDS) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.kind = kind;
      button.title = kind;
      button.setAttribute("aria-label", kind);
      const count = document.createElement("span");
      count.className = "count";
      button.append(onairIcons.icon(kind, 22), count);
      button.addEventListener("click", () => react(kind));
      els.bar.append(button);
    }
  }

  function updateBarTotals() {
    for (const button of els.bar.querySelectorAll("button")) {
      const n = chat.totals[button.dataset.kind] || 0;
      button.querySelector(".count").textContent = n ? String(n) : "";
    }
  }

  function raw(doc) {
    if (chat.socket && chat.socket.readyState === WebSocket.OPEN && chat.connected) {
      chat.socket.send(JSON.stringify(doc));
      return true;
    }
    if (chat.outbox.length < 20) chat.outbox.push(doc);
    return false;
  }

  function flushOutbox() {
    const pending = chat.outbox.splice(0);
    pending.forEach(raw);
  }

  function send(text, question) {
    return raw({ type: "comment", text: String(text), question: !!question });
  }

  function react(kind) { return raw({ type: "react", kind }); }

  els.form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = els.text.value.trim();
    if (!text) return;
    const name = (els.name.value || "").trim();
    if (name) { try { localStorage.setItem("onair-name", name); } catch (e) { /* private mode */ } }
    send(text, els.question.checked);
    els.text.value = "";
    els.question.checked = false;
    // A new name takes effect on the next hello: reconnect (with `since`, so nothing is missed).
    if (!token && name && name !== helloName && chat.socket) { chat.resetRetry(); chat.socket.close(1000, "rename"); }
  });

  buildBar();
  chat.connect();
})();
