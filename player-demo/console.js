// The moderation console at /console/<broadcast id>: the live comment feed with
// one-click delete / timeout / ban / pin, the held queue, settings, bans,
// moderators and the audit log.  Authorised by the host token or a moderator
// token (typed in, or given as #token=... in the URL fragment, which is then
// removed from the address bar).  User text only ever goes in with textContent.
// API: broadcaster/moderation_api.py; the live feed comes over chat.js's socket (docs/chat-protocol.md).
"use strict";
(function () {
  const broadcastId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const $ = (id) => document.getElementById(id);
  const els = {
    title: $("title"), actor: $("actor"), viewers: $("viewers"), status: $("status"),
    login: $("login"), loginToken: $("login-token"), loginError: $("login-error"), panels: $("panels"),
    feed: $("feed"), pinned: $("pinned"), held: $("held"), heldCount: $("held-count"),
    settings: $("settings"), settingsStatus: $("settings-status"), bans: $("bans"),
    audit: $("audit"), modBox: $("moderators-box"), grant: $("grant"), grantLabel: $("grant-label"),
    grantToken: $("grant-token"), moderators: $("moderators"),
  };
  const MAX_FEED = 300;
  const MAX_AUDIT_ROWS = 500;
  const POLL_MS = 1500;
  const TIMEOUT_SECONDS = 300;
  const storageKey = "onair-console-token:" + broadcastId;

  const view = window.onairChatView;
  const span = view.span;

  // The feed: chat.js's socket, with a chat token the console asks for before each connection.
  const feed = window.OnairChatSocket(broadcastId, {
    prepare: () => api("POST", "chat-token"),
    hello: (doc) => ({ type: "hello", token: doc.token }),
    onMessage: handle,
    onClose: () => { setStatus("feed reconnecting…"); return 0; },
  });
  const state = Object.assign(feed, { token: null, actor: null, auditAfter: 0, pollTimer: null });
  window.onairConsole = state;

  function setStatus(text) { els.status.textContent = text || ""; }

  function api(method, path, body) {
    const init = { method, headers: { Authorization: "Bearer " + state.token } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const url = path.startsWith("/") ? path
      : "/api/broadcasts/" + encodeURIComponent(broadcastId) + "/moderation/" + path;
    return fetch(url, init).then(async (resp) => {
      let doc = null;
      if (resp.status !== 204) { try { doc = await resp.json(); } catch (e) { doc = null; } }
      if (!resp.ok) {
        const err = new Error(doc && doc.error ? doc.error : "HTTP " + resp.status);
        err.status = resp.status;
        throw err;
      }
      return doc;
    });
  }

  function act(promise, what) {
    setStatus(what + "…");
    return promise.then((doc) => { setStatus(""); return doc; })
      .catch((err) => { setStatus(what + " failed: " + err.message); throw err; });
  }

  function button(label, cls, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = cls;
    b.addEventListener("click", onClick);
    return b;
  }

  // --- login -------------------------------------------------------------------------
  function start() {
    const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token");
    if (fromFragment) {
      history.replaceState(null, "", location.pathname + location.search);  // keep it off the screen
      try { sessionStorage.setItem(storageKey, fromFragment); } catch (e) { /* private mode */ }
    }
    let stored = null;
    try { stored = sessionStorage.getItem(storageKey); } catch (e) { /* private mode */ }
    const token = fromFragment || stored;
    if (token) login(token); else showLogin("");
  }

  function showLogin(message) {
    els.panels.hidden = true;
    els.login.hidden = false;
    els.loginError.textContent = message;
  }

  function login(token) {
    state.token = token;
    api("GET", "me").then((me) => {
      try { sessionStorage.setItem(storageKey, token); } catch (e) { /* private mode */ }
      state.actor = me.actor;
      els.title.textContent = me.broadcast.title;
      els.actor.textContent = "as " + me.actor;
      els.login.hidden = true;
      els.panels.hidden = false;
      els.modBox.hidden = me.actor.startsWith("moderator:");
      loadSettings();
      refresh();
      if (!els.modBox.hidden) loadModerators();
      feed.connect();
      state.pollTimer = setInterval(refresh, POLL_MS);
    }).catch((err) => {
      try { sessionStorage.removeItem(storageKey); } catch (e) { /* private mode */ }
      showLogin(err.status === 401 || err.status === 403 ? "That token is not valid for this broadcast."
                                                          : "Cannot open the console: " + err.message);
    });
  }

  els.login.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = els.loginToken.value.trim();
    els.loginToken.value = "";
    if (token) login(token);
  });

  // --- live feed over the chat socket ----------------------------------------------------------
  function handle(msg) {
    switch (msg.type) {
      case "history":
        setStatus("");
        msg.comments.forEach(addComment);
        break;
      case "comment": addComment(msg); break;
      case "comment_removed": {
        const li = els.feed.querySelector('li[data-comment-id="' + view.cssEscape(msg.id) + '"]');
        if (li) markRemoved(li);
        if (els.pinned.dataset.commentId === msg.id) showPinned(null);
        break;
      }
      case "pinned": showPinned(msg.comment); break;
      case "viewers": els.viewers.textContent = view.viewers(msg.count); break;
    }
  }

  function trimFeed() {
    while (els.feed.children.length > MAX_FEED) els.feed.firstElementChild.remove();
    els.feed.scrollTop = els.feed.scrollHeight;
  }

  function addComment(c) {
    if (!feed.fresh(c)) return;   // already shown
    const li = document.createElement("li");
    li.dataset.commentId = c.id;
    li.dataset.viewerId = c.author ? c.author.id : "";
    const verdict = span("verdict verdict-publish", "published");
    const author = span("author", view.authorName(c));
    author.title = c.author ? c.author.id : "";
    const text = span("text", c.text);
    const actions = document.createElement("span");
    actions.className = "actions";
    const viewer = c.author ? c.author.id : "";
    actions.append(
      button("Delete", "act-delete danger", () => act(api("DELETE", "comments/" + encodeURIComponent(c.id), {}),
                                                       "delete").catch(() => {})),
      ...viewerActions(viewer).children,
      button("Pin", "act-pin", () => act(api("PUT", "pin", { comment_id: c.id }), "pin").catch(() => {})),
    );
    li.append(verdict, author, text, actions);
    els.feed.append(li);
    trimFeed();
  }

  function viewerActions(viewer) {
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.append(
      button("Timeout " + TIMEOUT_SECONDS / 60 + " min", "act-timeout",
             () => act(api("POST", "viewers/" + encodeURIComponent(viewer) + "/timeout",
                           { seconds: TIMEOUT_SECONDS }), "timeout").then(refresh).catch(() => {})),
      button("Ban", "act-ban danger", () => act(api("POST", "viewers/" + encodeURIComponent(viewer) + "/ban", {}),
                                                "ban").then(refresh).catch(() => {})),
      // also every other identity from the viewer's network address (the node never shows the address)
      button("Ban + network", "act-ban-address danger",
             () => act(api("POST", "viewers/" + encodeURIComponent(viewer) + "/ban", { address: true }),
                       "ban").then(refresh).catch(() => {})));
    return actions;
  }

  function markRemoved(li) {
    li.classList.add("removed");
    const v = li.querySelector(".verdict");
    if (v) { v.className = "verdict verdict-removed"; v.textContent = "removed"; }
    const a = li.querySelector(".actions");
    if (a) a.remove();
  }

  function addAutoVerdict(e) {
    // Held, rejected and censored comments reach the console through the audit log.
    if (e.action === "auto_publish_censored" && e.detail && e.text !== null) {
      // The censored comment is already in the feed (it was published): label it there.
      for (const li of els.feed.querySelectorAll("li:not(.auto)")) {
        const text = li.querySelector(".text");
        const badge = li.querySelector(".verdict-publish");
        if (badge && li.dataset.viewerId === e.viewer_id && text && text.textContent === e.detail.shown) {
          badge.className = "verdict verdict-publish_censored";
          badge.textContent = "censored";
          badge.title = e.filter + ": " + e.text;
          return;
        }
      }
    }
    const li = document.createElement("li");
    li.className = "auto";
    li.dataset.viewerId = e.viewer_id || "";
    const kind = e.action.replace(/^auto_/, "");
    const label = { publish_censored: "censored", hold: "held", reject: "rejected" }[kind] || kind;
    const d = e.detail || {};
    li.append(span("verdict verdict-" + kind, label), span("author", e.viewer_id || "?"),
              span("text", e.text === null ? "(erased)" : e.text),
              span("why", " — " + why(e.filter, e.reason, d.language, d.score)));
    if (e.viewer_id) li.append(viewerActions(e.viewer_id));
    els.feed.append(li);
    trimFeed();
  }

  function showPinned(c) {
    if (!c) { els.pinned.hidden = true; els.pinned.textContent = ""; delete els.pinned.dataset.commentId; return; }
    els.pinned.textContent = "";
    els.pinned.append(span("author", "pinned · " + (c.author && c.author.name ? c.author.name : "")), span("text", c.text),
                      button("Unpin", "act-unpin", () => act(api("DELETE", "pin"), "unpin").catch(() => {})));
    els.pinned.dataset.commentId = c.id;
    els.pinned.hidden = false;
  }

  // --- polled panels: held queue, bans, audit log ---------------------------------------------------
  function refresh() {
    api("GET", "held").then(showHeld).catch(() => {});
    api("GET", "bans").then(showBans).catch(() => {});
    api("GET", "audit?after=" + state.auditAfter + "&limit=200").then(showAudit).catch(() => {});
  }

  // Keyed updates: a row the host is about to click is never rebuilt under the pointer.
  function syncList(list, items, key, render) {
    const wanted = new Map(items.map((item) => [key(item), item]));
    for (const li of Array.from(list.children)) {
      if (!wanted.has(li.dataset.key)) li.remove();
    }
    const present = new Set(Array.from(list.children, (li) => li.dataset.key));
    for (const [k, item] of wanted) {
      if (present.has(k)) continue;
      const li = render(item);
      li.dataset.key = k;
      list.append(li);
    }
  }

  // "hate_model: hate_speech (de, score 0.83)": the rule, and the language and score behind it
  function why(filter, reason, language, score) {
    const rule = [filter, reason].filter(Boolean).join(": ");
    const extra = [language, typeof score === "number" ? "score " + score.toFixed(2) : ""].filter(Boolean).join(", ");
    return extra ? rule + " (" + extra + ")" : rule;
  }

  function showHeld(doc) {
    els.heldCount.textContent = doc.held.length ? "(" + doc.held.length + ")" : "";
    syncList(els.held, doc.held, (h) => h.held_id, (h) => {
      const li = document.createElement("li");
      li.dataset.heldId = h.held_id;
      const actions = document.createElement("span");
      actions.className = "actions";
      actions.append(
        button("Approve", "act-approve", () => act(api("POST", "held/" + encodeURIComponent(h.held_id) + "/approve"),
                                                   "approve").then(refresh).catch(refresh)),
        button("Reject", "act-reject danger", () => act(api("POST", "held/" + encodeURIComponent(h.held_id) + "/reject", {}),
                                                        "reject").then(refresh).catch(refresh)),
      );
      li.append(span("author", view.authorName(h)), span("text", h.text),
                span("lang", h.language || ""), span("why", " — " + why(h.filter, h.reason)), actions);
      return li;
    });
  }

  function showBans(doc) {
    syncList(els.bans, doc.bans, (b) => b.viewer_id + "|" + b.until, (b) => {
      const li = document.createElement("li");
      const until = (b.until ? "until " + new Date(b.until * 1000).toLocaleTimeString() : "banned")
                    + (b.address ? ", with their network address" : "");
      li.append(span("viewer", b.viewer_id + " "), span("until", until + (b.reason ? " (" + b.reason + ")" : "")),
                button("Unban", "act-unban", () => act(api("DELETE", "viewers/" + encodeURIComponent(b.viewer_id) + "/ban", {}),
                                                       "unban").then(refresh).catch(() => {})));
      return li;
    });
  }

  function showAudit(doc) {
    for (const e of doc.entries) {
      if (e.id <= state.auditAfter) continue;  // two polls in flight got the same entries
      state.auditAfter = e.id;
      const tr = document.createElement("tr");
      const cells = [new Date(e.ts * 1000).toLocaleTimeString(), e.actor, e.action, e.viewer_id || "",
                     e.text === null || e.text === undefined ? "" : e.text,
                     why(e.filter, e.reason, e.detail && e.detail.language, e.detail && e.detail.score)];
      for (const value of cells) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.append(td);
      }
      els.audit.prepend(tr);
      if (e.actor === "auto") addAutoVerdict(e);
    }
    while (els.audit.children.length > MAX_AUDIT_ROWS) els.audit.lastElementChild.remove();
  }

  // --- settings --------------------------------------------------------------------------------------
  const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
  const words = (text) => text.split(/[\s,]+/).filter(Boolean);
  // "de=high fr=low" -> {de: "high", fr: "low"}; the server validates codes and levels
  const pairs = (text) => Object.fromEntries(words(text).map((w) => { const i = w.indexOf("=");
    return i < 0 ? [w, ""] : [w.slice(0, i), w.slice(i + 1)]; }));

  function loadSettings() {
    api("GET", "settings").then((s) => {
      const f = els.settings.elements;
      f.strictness.value = s.strictness;
      f.languages.value = (s.languages || []).join(" ");
      f.language_strictness.value = Object.entries(s.language_strictness || {}).map(([k, v]) => k + "=" + v).join(" ");
      f.slow_mode_seconds.value = s.slow_mode_seconds;
      f.link_policy.value = s.link_policy;
      f.allowed_domains.value = s.allowed_domains.join("\n");
      f.blocked_terms.value = s.blocked_terms.join("\n");
      f.allowed_terms.value = s.allowed_terms.join("\n");
    }).catch(() => {});
  }

  els.settings.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = els.settings.elements;
    const body = { strictness: f.strictness.value, languages: words(f.languages.value),
                   language_strictness: pairs(f.language_strictness.value),
                   slow_mode_seconds: Number(f.slow_mode_seconds.value || 0),
                   link_policy: f.link_policy.value, allowed_domains: lines(f.allowed_domains.value),
                   blocked_terms: lines(f.blocked_terms.value), allowed_terms: lines(f.allowed_terms.value) };
    els.settingsStatus.textContent = "saving…";
    api("PUT", "settings", body).then(() => { els.settingsStatus.textContent = "saved"; refresh(); })
      .catch((err) => { els.settingsStatus.textContent = err.message; });
  });

  // --- moderators (host and admin only) -------------------------------------------------------------
  function loadModerators() {
    api("GET", "moderators").then((doc) => {
      els.moderators.textContent = "";
      for (const g of doc.moderators) {
        const li = document.createElement("li");
        li.append(span("label", g.label + " "),
                  button("Revoke", "act-revoke danger", () => act(api("DELETE", "moderators/" + encodeURIComponent(g.id)),
                                                                  "revoke").then(loadModerators).catch(() => {})));
        els.moderators.append(li);
      }
    }).catch(() => {});
  }

  els.grant.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const label = els.grantLabel.value.trim();
    if (!label) return;
    act(api("POST", "moderators", { label }), "grant").then((g) => {
      els.grantLabel.value = "";
      // Shown once: the server keeps only its hash.
      els.grantToken.textContent = "Console link for " + g.label + ": " + location.origin + location.pathname +
        "#token=" + g.token;
      loadModerators();
    }).catch(() => {});
  });

  start();
})();
