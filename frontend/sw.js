// The service worker of the web app: shows the Web Push the server sends to a person with
// no tab open (a `PushMessage`, shared/src/push.rs) and opens the conversation on click.
// Served at /sw.js (scope /); registered by notify.js when notifications are turned on.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { preview: event.data ? event.data.text() : "" };
  }
  const from = message.from || "Confab";
  const title = message.kind === "mention" ? `${from} in #${message.conversation}` : from;
  const url = typeof message.url === "string" && message.url.startsWith("/") ? message.url : "/";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: message.preview || "",
      // One notification per conversation: a newer push replaces the older.
      tag: `${message.kind || "confab"}:${message.conversation || ""}`,
      renotify: true,
      icon: "/favicon.svg",
      data: { url },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(
    (async () => {
      const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const tab = tabs.find((c) => new URL(c.url).origin === self.location.origin);
      if (tab) {
        await tab.focus();
        tab.postMessage({ open: url });
        return;
      }
      await self.clients.openWindow(url);
    })(),
  );
});
