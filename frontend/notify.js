// Desktop notifications and Web Push for the web app, in plain JS so the WASM stays small.
// The app calls `window.confabNotify` (see frontend/src/notify.rs); the service worker is
// /sw.js. Nothing here runs until the person turns notifications on in Settings.
"use strict";
(() => {
  const KEY = "confab.notifications";
  // The id the server gave this browser's push subscription ("This device" in Settings).
  const SUBSCRIPTION = "confab.push.subscription";
  const supported = () => "Notification" in window;
  const on = () => {
    try {
      return localStorage.getItem(KEY) === "on";
    } catch {
      return false;
    }
  };
  const remember = (value) => {
    try {
      localStorage.setItem(KEY, value);
    } catch {}
  };
  // Opens an address of the app without a reload: the router follows `popstate`.
  const open = (url) => {
    if (typeof url !== "string" || !url.startsWith("/")) return;
    window.focus();
    if (location.pathname !== url) {
      history.pushState(null, "", url);
      dispatchEvent(new PopStateEvent("popstate", { state: null }));
    }
  };
  const api = async (method, path, token, body) => {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!answer.ok && answer.status !== 404) {
      const problem = await answer.json().catch(() => ({}));
      throw new Error(problem.detail || `The server answered ${answer.status}.`);
    }
    return answer.status === 204 || answer.status === 404 ? null : answer.json();
  };
  const b64 = (text) => {
    const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  // The service worker asks an open tab to show a conversation (notificationclick).
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.open) open(event.data.open);
    });
  }
  window.confabNotify = {
    // "on" when the person turned notifications on here and the browser allows them.
    state() {
      if (!supported()) return "unsupported";
      if (Notification.permission === "denied") return "denied";
      return on() && Notification.permission === "granted" ? "on" : "off";
    },
    // Asks for permission (call from a click), registers the service worker, subscribes to
    // Web Push with the server's key and stores the subscription on the server for the
    // holder of `token`. Without Web Push in this browser, desktop notifications still work
    // in open tabs.
    async enable(token) {
      if (!supported()) throw new Error("This browser cannot show notifications.");
      const permission = await Notification.requestPermission();
      if (permission !== "granted") throw new Error("Notifications are blocked for this site in the browser's settings.");
      remember("on");
      if (!("serviceWorker" in navigator) || !("PushManager" in window)) return;
      const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
      await navigator.serviceWorker.ready;
      const answer = await fetch("/api/push/key");
      if (!answer.ok) return;
      const { public_key } = await answer.json();
      const subscription =
        (await registration.pushManager.getSubscription()) ||
        (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64(public_key) }));
      const stored = await api("POST", "/api/push/subscriptions", token, { ...subscription.toJSON(), device: this.device() });
      localStorage.setItem(SUBSCRIPTION, String(stored.id));
    },
    // Turns notifications off here, ends this browser's push subscription and removes it
    // from the server.
    async disable(token) {
      remember("off");
      if ("serviceWorker" in navigator) {
        const registration = await navigator.serviceWorker.getRegistration("/");
        const subscription = registration && (await registration.pushManager.getSubscription());
        if (subscription) await subscription.unsubscribe();
      }
      const id = localStorage.getItem(SUBSCRIPTION);
      if (id) {
        await api("DELETE", `/api/push/subscriptions/${Number(id)}`, token);
        localStorage.removeItem(SUBSCRIPTION);
      }
    },
    // A notification for a private message (`kind` "dm") or a mention ("mention") that
    // arrived while the tab is hidden; one per conversation (`tag`), replaced by the next,
    // worded as the service worker words a push; a click opens the conversation.
    show(kind, conversation, from, text) {
      if (this.state() !== "on" || document.visibilityState !== "hidden") return false;
      const title = kind === "mention" ? `${from} in #${conversation}` : from;
      const url = kind === "mention" ? `/rooms/${conversation}` : `/dm/${conversation}`;
      const body = text.length > 140 ? `${text.slice(0, 140).trimEnd()}…` : text;
      const tag = `${kind}:${conversation}`;
      const notification = new Notification(title, { body, tag, renotify: true, data: { url } });
      notification.onclick = () => {
        notification.close();
        open(url);
      };
      return true;
    },
    // The caller's devices that get pushes: [{id, name, here}], `here` for this browser.
    async devices(token) {
      const here = localStorage.getItem(SUBSCRIPTION);
      const list = (await api("GET", "/api/push/subscriptions", token)) || [];
      return list.map((s) => ({ id: s.id, name: s.device || s.service, here: String(s.id) === here }));
    },
    // Fills Settings' list (`ul`) with `devices`: a row each with its name, "This device" on
    // this browser's, and a Remove button carrying the device's id (the page handles the
    // clicks). Text goes in as text, never as markup.
    fill(ul, devices) {
      const el = (tag, testid, text) => {
        const e = document.createElement(tag);
        if (testid) e.dataset.testid = testid;
        if (text) e.textContent = text;
        return e;
      };
      ul.replaceChildren(...devices.map((d) => {
        const li = el("li", "device-row");
        li.className = "device";
        li.dataset.id = d.id;
        li.dataset.this = d.here;
        li.append(el("span", "", d.name));
        if (d.here) {
          const badge = el("span", "device-this", "This device");
          badge.className = "badge";
          li.append(badge);
        }
        const remove = el("button", "device-remove", "Remove");
        remove.type = "button";
        remove.className = "secondary small";
        remove.dataset.id = d.id;
        remove.setAttribute("aria-label", `Remove ${d.name}`);
        li.append(remove);
        return li;
      }));
    },
    // Removes one of the caller's devices; this browser's turns notifications off here too.
    async remove(token, id) {
      if (String(id) === localStorage.getItem(SUBSCRIPTION)) return this.disable(token);
      await api("DELETE", `/api/push/subscriptions/${Number(id)}`, token);
    },
    // A short name for this browser, for the list of devices.
    device() {
      const ua = navigator.userAgent;
      const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
      const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
      return (os ? `${browser} on ${os}` : browser).slice(0, 64);
    },
  };
})();
