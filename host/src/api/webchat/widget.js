/* Seam web chat widget. Put on a page:
 *   <script src="https://seam.example.com/webchat.js" data-channel="web" data-site-key="KEY" async></script>
 * The visitor gets a random id kept in localStorage. Messages go to the channel's webhook;
 * the conversation so far comes from /v1/channels/<channel>/webchat/history, and replies
 * arrive over server-sent events from /v1/channels/<channel>/webchat/stream. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var base = new URL(script.src).origin;
  var channel = script.getAttribute("data-channel") || "web";
  var siteKey = script.getAttribute("data-site-key") || "";
  var title = script.getAttribute("data-title") || "Chat with us";
  var visitor = localStorage.getItem("seam-visitor");
  if (!visitor) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    visitor = "v_" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    localStorage.setItem("seam-visitor", visitor);
  }
  var counter = 0;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  var box = el("div", { id: "seam-chat", style: "position:fixed;bottom:16px;right:16px;width:300px;font:14px sans-serif;background:#fff;border:1px solid #ccc;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.2);z-index:99999" });
  var head = el("div", { style: "padding:8px;background:#2b6cb0;color:#fff;border-radius:8px 8px 0 0" }, title);
  var log = el("div", { id: "seam-chat-log", style: "height:220px;overflow-y:auto;padding:8px" });
  var form = el("form", { id: "seam-chat-form", style: "display:flex;border-top:1px solid #eee" });
  var input = el("input", { id: "seam-chat-input", placeholder: "Type a message", style: "flex:1;border:0;padding:8px" });
  var button = el("button", { type: "submit", style: "border:0;background:#2b6cb0;color:#fff;padding:0 12px" }, "Send");
  var contact = el("form", { id: "seam-chat-contact", style: "display:flex;border-top:1px solid #eee" });
  var email = el("input", { id: "seam-chat-email", placeholder: "Your email (optional)", type: "email", style: "flex:1;border:0;padding:8px" });
  var save = el("button", { type: "submit", style: "border:0;background:#eee;padding:0 12px" }, "Save");
  form.appendChild(input); form.appendChild(button);
  contact.appendChild(email); contact.appendChild(save);
  box.appendChild(head); box.appendChild(log); box.appendChild(form); box.appendChild(contact);

  var looks = {
    visitor: "margin:4px 0 4px 40px;padding:6px 8px;border-radius:8px;background:#2b6cb0;color:#fff",
    agent: "margin:4px 40px 4px 0;padding:6px 8px;border-radius:8px;background:#edf2f7;color:#1a202c",
    system: "margin:4px 0;color:#718096;font-style:italic;font-size:12px;text-align:center"
  };
  function show(who, text) {
    var line = el("div", { "class": "seam-" + who, style: looks[who] }, text);
    log.appendChild(line);
    log.scrollTop = log.scrollHeight;
  }
  function post(body) {
    body.visitor = visitor;
    body.id = "c_" + Date.now() + "_" + (++counter);
    body.page = location.href;
    body.sent_at = Date.now();
    return fetch(base + "/v1/channels/" + encodeURIComponent(channel) + "/webhook", {
      method: "POST",
      headers: { "content-type": "application/json", "x-seam-site-key": siteKey },
      body: JSON.stringify(body)
    });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    show("visitor", text);
    post({ text: text }).catch(function () { show("system", "Not sent: the connection failed."); });
  });
  contact.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!email.value) return;
    post({ email: email.value }).then(function () { show("system", "Thanks, we will write to " + email.value); });
  });
  var api = base + "/v1/channels/" + encodeURIComponent(channel) + "/webchat/";
  // Replies shown but not yet reported read: reported while the page is visible.
  var unread = [];
  function reportRead() {
    if (document.visibilityState !== "visible" || unread.length === 0) return;
    var ids = unread.splice(0, 50);
    post({ read: ids }).catch(function () { unread = ids.concat(unread); });
  }
  document.addEventListener("visibilitychange", reportRead);
  function reply(message) {
    show("agent", message.text);
    if (message.id) unread.push(message.id);
  }
  // Replies from `after` (the log offset the history was read at) on; EventSource resumes
  // by itself with Last-Event-ID after a dropped connection.
  function listen(after) {
    var url = api + "stream?visitor=" + visitor + (after == null ? "" : "&after=" + after);
    new EventSource(url).addEventListener("message", function (e) {
      reply(JSON.parse(e.data));
      reportRead();
    });
  }
  // The conversation so far (after a reload, or on another page of the site), then live.
  fetch(api + "history?visitor=" + visitor)
    .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
    .then(function (history) {
      history.items.forEach(function (m) {
        if (m.from === "visitor") show("visitor", m.text); else reply(m);
      });
      reportRead();
      listen(history.after);
    })
    .catch(function () { listen(null); });
  function mount() { document.body.appendChild(box); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
