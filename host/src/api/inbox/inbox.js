// The Seam inbox: everything goes through the /v1 API with the agent's key. Text from
// customers is only ever put into the page as text (textContent), never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { key: sessionStorage.getItem("seam-key"), agent: "", view: null, queues: [], open: null,
    stream: null };

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  /** Calls the API; throws an Error with the API's message on a non-2xx answer. */
  async function api(method, path, body) {
    const headers = { authorization: "Bearer " + state.key };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || `${method} ${path}: ${res.status}`);
    return data;
  }

  const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");
  function textOf(item) {
    const p = (item.event && item.event.payload) || {};
    return p.text || (p.message && p.message.text) || (p.content && p.content.text) || "";
  }

  // ---- sign in -------------------------------------------------------------------------
  // The agent comes from the key (GET /v1/me): a key bound to an agent signs in as that agent;
  // any other key sees the queues but has no "Mine" and cannot take conversations.
  async function signIn(key) {
    state.key = key;
    const me = await api("GET", "/v1/me");
    const agent = me.agent || "";
    state.agent = agent;
    const queues = await api("GET", "/v1/queues");
    sessionStorage.setItem("seam-key", key);
    state.queues = queues.items.map((q) => q.id);
    $("signin").style.display = "none";
    $("app").classList.add("on");
    $("who").textContent = agent ? "signed in as " + agent : "signed in with key " + me.name + " (" + me.role + ")";
    state.view = state.view || (agent ? { mine: true } : { all: true });
    renderViews();
    await loadList();
    listen();
  }

  $("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    try {
      await signIn($("key").value.trim());
    } catch (err) {
      state.key = null;
      $("signin-error").textContent = "Sign-in failed: " + err.message;
    }
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.clear();
    location.reload();
  });

  // ---- the list ------------------------------------------------------------------------
  function renderViews() {
    const views = [];
    if (state.agent) views.push(["Mine", { mine: true }]);
    views.push(["All open", { all: true }]);
    for (const q of state.queues) views.push([q, { queue: q }]);
    $("views").replaceChildren(...views.map(([label, view]) => el("button", {
      type: "button", "data-view": label,
      class: JSON.stringify(view) === JSON.stringify(state.view) ? "active" : null,
      onclick: () => { state.view = view; renderViews(); loadList(); },
    }, label)));
  }

  async function loadList() {
    const v = state.view;
    const query = v.mine ? "assignee=" + encodeURIComponent(state.agent)
      : v.queue ? "queue=" + encodeURIComponent(v.queue) : "status=open";
    const page = await api("GET", "/v1/conversations?limit=200&" + query);
    const items = page.items.filter((c) => c.status !== "resolved").reverse();
    $("list").replaceChildren(...(items.length ? items.map((c) => el("li", {
      "data-id": c.id, class: state.open === c.id ? "open" : null, onclick: () => openConversation(c.id),
    },
    el("div", {}, el("span", { class: "mark" }, c.last_channel || "?"), c.customer),
    el("div", { class: "meta" },
      [c.queue ? "queue " + c.queue : "no queue", c.assignee ? "→ " + c.assignee : "waiting",
        c.message_count + " messages", c.status].join(" · ")))) : [el("li", { class: "empty" }, "Nothing here.")]));
  }

  // ---- one conversation ----------------------------------------------------------------
  async function openConversation(id) {
    state.open = id;
    for (const li of $("list").children) li.classList.toggle("open", li.dataset.id === id);
    const [c, messages] = await Promise.all([api("GET", "/v1/conversations/" + id),
      api("GET", "/v1/conversations/" + id + "/messages?limit=200")]);
    const [customer, history] = await Promise.all([api("GET", "/v1/customers/" + c.customer),
      api("GET", "/v1/customers/" + c.customer + "/timeline?order=desc&limit=200")]);
    renderConversation(c, messages.items, customer);
    renderCustomer(customer, history.items, c.id);
  }

  function renderConversation(c, items, customer) {
    const transfer = el("select", { id: "transfer-queue" }, state.queues.map((q) => el("option", { value: q }, q)));
    // A live refresh of the same conversation keeps the queue the agent picked.
    const picked = $("transfer-queue");
    if (picked && picked.dataset.id === c.id) transfer.value = picked.value;
    transfer.dataset.id = c.id;
    const act = (label, id, change) => el("button", { type: "button", id, onclick: async () => {
      try { await api("PATCH", "/v1/conversations/" + c.id, change()); await refresh(); }
      catch (err) { alert(err.message); }
    } }, label);
    const head = el("div", { class: "head" },
      el("strong", { id: "conversation-status" }, c.status), " ",
      el("span", { id: "conversation-place" }, (c.queue || "no queue") + (c.assignee ? " · " + c.assignee
        : c.queue_position ? ` · #${c.queue_position} in line` : "")),
      state.agent ? act("Take", "assign-me", () => ({ assignee: state.agent })) : null,
      transfer, act("Transfer", "transfer", () => ({ queue: transfer.value, assignee: null })),
      c.status === "resolved" ? act("Reopen", "reopen", () => ({ status: "open" }))
        : act("Resolve", "resolve", () => ({ status: "resolved" })));
    const timeline = el("div", { id: "timeline" }, items.map((item) => {
      const type = item.type || "";
      const text = textOf(item);
      const out = type.startsWith("message.send");
      const inbound = type === "message.received";
      const cls = out ? "entry out" : inbound ? "entry in" : "entry note";
      const channel = item.channel || (item.event && item.event.payload && item.event.payload.channel) || "";
      return el("div", { class: cls, "data-type": type },
        channel ? el("span", { class: "mark" }, channel) : null,
        inbound || out ? text || "(attachment)" : type + (text ? ": " + text : ""), el("span", { class: "time" }, time(item.at)));
    }));
    const channels = Object.keys(customer.channels || {});
    const channel = el("select", { id: "reply-channel" },
      el("option", { value: "" }, "last channel" + (c.last_channel ? " (" + c.last_channel + ")" : "")),
      channels.map((ch) => el("option", { value: ch }, ch)));
    // A live refresh keeps the reply form (and what the agent is typing) of this conversation.
    const kept = $("reply");
    if (kept && kept.dataset.id === c.id) {
      kept.querySelector("option[value='']").textContent = "last channel" + (c.last_channel ? " (" + c.last_channel + ")" : "");
      $("conversation").replaceChildren(head, timeline, kept);
      timeline.scrollTop = timeline.scrollHeight;
      return;
    }
    const input = el("input", { id: "reply-text", placeholder: "Reply…", autocomplete: "off" });
    const form = el("form", { id: "reply", "data-id": c.id, onsubmit: async (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      const body = { text: input.value };
      if (channel.value) body.channel = channel.value;
      try { await api("POST", "/v1/conversations/" + c.id + "/messages", body); input.value = ""; await refresh(); }
      catch (err) { alert(err.message); }
    } }, input, channel, el("button", { type: "submit", id: "reply-send" }, "Send"));
    $("conversation").replaceChildren(head, timeline, form);
    timeline.scrollTop = timeline.scrollHeight;
  }

  function renderCustomer(customer, history, current) {
    const previous = [...new Set(history.map((i) => i.conversation).filter((id) => id && id !== current))];
    const attributes = Object.entries(customer.attributes || {});
    $("customer").replaceChildren(
      el("h2", { id: "customer-id" }, customer.id),
      el("h3", {}, "Identities"), el("ul", { id: "identities" }, customer.identities.map((i) => el("li", {}, i.identity))),
      el("h3", {}, "Channels"), el("ul", {}, Object.keys(customer.channels || {}).map((ch) => el("li", {}, ch))),
      el("h3", {}, "Attributes"), attributes.length
        ? el("ul", { id: "attributes" }, attributes.map(([k, v]) => el("li", {}, k + ": " + (typeof v === "string" ? v : JSON.stringify(v)))))
        : el("div", { class: "empty" }, "none"),
      el("h3", {}, "Previous conversations"), previous.length
        ? el("ul", { id: "previous" }, previous.map((id) => el("li", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); openConversation(id); } }, id))))
        : el("div", { class: "empty" }, "none"));
  }

  // ---- live ----------------------------------------------------------------------------
  let pending = null;
  async function refresh() {
    await loadList();
    if (state.open) await openConversation(state.open);
  }
  function soon() {
    clearTimeout(pending);
    pending = setTimeout(() => refresh().catch(() => {}), 150);
  }

  /** Reads the event stream with fetch (the key goes in a header) and refreshes on events. */
  async function listen() {
    if (state.stream) return;
    state.stream = new AbortController();
    try {
      const res = await fetch("/v1/events/stream", { headers: { authorization: "Bearer " + state.key }, signal: state.stream.signal });
      if (!res.ok) throw new Error("stream " + res.status);
      $("live").textContent = "live";
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const frames = buffer.split("\n\n");
        buffer = frames.pop();
        if (frames.some((f) => f.split("\n").some((line) => line.startsWith("data:")))) soon();
      }
    } catch (err) {
      if (err.name === "AbortError") return;
    }
    $("live").textContent = "reconnecting…";
    state.stream = null;
    setTimeout(listen, 2000);
  }

  if (state.key) signIn(state.key).catch(() => { sessionStorage.clear(); state.key = null; });
})();
