// Notifications in a real browser: `@` in the composer offers the room's members and the
// keyboard alone picks one; a private message puts a count in the tab title and a dot on the
// favicon; with desktop notifications on (Settings), a hidden tab shows one per private
// message and mention, grouped per conversation, none for a room the reader keeps quiet, and
// a click opens the conversation; the browser's push subscription is stored on the server
// and listed as "This device", and a push delivered to the service worker (the DevTools
// protocol's ServiceWorker.deliverPushMessage) is shown as a notification.
//
// Headless Chromium has no push service to subscribe with, and shows no desktop
// notifications one could read back: an init script stands in for `PushManager.subscribe`
// (a subscription on 127.0.0.1, which the suite's server accepts) and records each
// `new Notification(…)`; it also lets the test say whether the tab counts as hidden. The
// service worker's own notifications are real (`registration.getNotifications()`).

import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { PASSWORD, logIn, openRoom } from '../lib/actions.mjs';
import { RpcClient, URL_BASE, api, assertNoCspViolations, expectAttr, expectCount, expectText, launchBrowser, login, newPage, signupAndLogin, until } from '../lib/harness.mjs';

const ROOM = 'ring-ring';
const READER = 'nellreads';
const WRITER = 'wallywrites';

let browser;
/** @type {import('playwright-core').Page} */ let page;
/** @type {RpcClient} */ let writer;

/** Runs in every page before the app: the stand-ins described above. */
function standIns({ p256dh, auth }) {
  window.__hidden = false;
  window.__shown = [];
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (window.__hidden ? 'hidden' : 'visible') });
  class RecordedNotification {
    constructor(title, options = {}) {
      this.title = title;
      this.tag = options.tag;
      this.body = options.body;
      this.onclick = null;
      window.__shown.push(this);
    }
    close() {}
    static get permission() {
      return 'granted';
    }
    static requestPermission() {
      return Promise.resolve('granted');
    }
  }
  window.Notification = RecordedNotification;
  if ('PushManager' in window) {
    let subscription = null;
    const endpoint = `http://127.0.0.1:9/push/${Math.random().toString(36).slice(2)}`;
    PushManager.prototype.getSubscription = async () => subscription;
    PushManager.prototype.subscribe = async () => {
      subscription = {
        endpoint,
        toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
        unsubscribe: async () => {
          subscription = null;
          return true;
        },
      };
      return subscription;
    };
  }
}

const shown = () => page.evaluate(() => window.__shown.map((n) => ({ title: n.title, tag: n.tag, body: n.body })));
const hide = (hidden) => page.evaluate((h) => (window.__hidden = h), hidden);

describe('Notifications', { concurrency: false }, () => {
  before(async () => {
    browser = await launchBrowser();
    page = await newPage(browser);
    await page.context().grantPermissions(['notifications'], { origin: URL_BASE });
    const keys = { p256dh: createECDH('prime256v1').generateKeys().toString('base64url'), auth: randomBytes(16).toString('base64url') };
    await page.addInitScript(standIns, keys);
    await signupAndLogin(READER, PASSWORD);
    writer = await RpcClient.connect(await signupAndLogin(WRITER, PASSWORD));
    await writer.call('room.join', { room: ROOM, history: 0 });
  });

  after(async () => {
    writer?.close();
    await browser?.close();
    assertNoCspViolations();
  });

  test('@ offers the room’s members; arrows and Tab pick one, Escape closes the list', async () => {
    await logIn(page, READER);
    await openRoom(page, ROOM);
    await expectCount(page.locator(`[data-testid="room-member"][data-username="${WRITER}"]`), 1);
    const input = page.getByTestId('composer-input');
    await input.pressSequentially('ping @wal');
    const options = page.getByTestId('mention-options').getByTestId('mention-option');
    await expectCount(options, 1);
    await expectText(options.first(), `@${WRITER}`);
    assert.equal(await input.getAttribute('aria-activedescendant'), await options.first().getAttribute('id'));
    await page.keyboard.press('Tab');
    await until('the name is put in', async () => (await input.inputValue()) === `ping @${WRITER} `);
    await expectCount(page.getByTestId('mention-options'), 0);
    assert.ok(await input.evaluate((el) => el === document.activeElement), 'the box keeps focus');

    // Nobody else here starts with "n": the reader is never offered.
    await input.pressSequentially('@n');
    await expectCount(page.getByTestId('mention-options'), 0);
    await input.fill('');
    await input.pressSequentially('@w');
    await expectCount(options, 1);
    await page.keyboard.press('Escape');
    await expectCount(page.getByTestId('mention-options'), 0);
    await input.fill('');
  });

  test('a private message counts in the tab title and puts a dot on the favicon', async () => {
    const icon = page.locator('link[rel="icon"]');
    assert.equal(await icon.getAttribute('href'), '/favicon.svg');
    await writer.call('dm.send', { to: READER, text: 'psst' });
    await until('the title counts it', async () => (await page.title()).startsWith('(1) '));
    await expectAttr(icon, 'href', '/favicon-unread.svg');
    await page.getByTestId('nav-dm').click();
    await page.locator(`a[href="/dm/${WRITER}"]`).first().click();
    await until('read: no count', async () => !(await page.title()).startsWith('('));
    await expectAttr(icon, 'href', '/favicon.svg');
  });

  test('turning notifications on stores this browser’s push subscription, listed as This device', async () => {
    await page.getByTestId('nav-settings').click();
    const toggle = page.getByTestId('notifications-toggle');
    assert.equal(await toggle.isChecked(), false);
    await toggle.click();
    await expectText(page.getByTestId('notifications-status'), 'On in this browser.');
    const mine = page.locator('[data-testid="device-row"][data-this="true"]');
    await expectText(mine.getByTestId('device-this'), 'This device');
    const listed = await api('GET', '/api/push/subscriptions', { token: await login(READER, PASSWORD) });
    assert.equal(listed.status, 200);
    assert.equal(listed.body.length, 1);
    assert.match(listed.body[0].device, /Chrome/);
    assert.equal(await mine.getAttribute('data-id'), String(listed.body[0].id));
  });

  test('a hidden tab shows one notification per private message and mention, none for a quiet room', async () => {
    await openRoom(page, ROOM);
    const quiet = page.getByTestId('room-quiet');
    await expectAttr(quiet, 'aria-pressed', 'false');
    await page.getByTestId('nav-rooms').click();
    await hide(true);
    const before = (await shown()).length;
    await writer.call('dm.send', { to: READER, text: 'are you there?' });
    await writer.call('room.send', { room: ROOM, text: `@${READER} standup` });
    await until('two notifications', async () => (await shown()).length === before + 2);
    const [dm, mention] = (await shown()).slice(before);
    assert.deepEqual(dm, { title: WRITER, tag: `dm:${WRITER}`, body: 'are you there?' });
    assert.deepEqual(mention, { title: `${WRITER} in #${ROOM}`, tag: `mention:${ROOM}`, body: `@${READER} standup` });

    // A click on the mention's opens the room.
    await page.evaluate(() => window.__shown.at(-1).onclick());
    await page.getByTestId('room-page').and(page.locator(`[data-room="${ROOM}"]`)).waitFor();

    // Quiet: a mention there shows nothing; a private message after it still does (the
    // socket delivers in order, so by then the mention was passed over).
    await hide(false);
    await quiet.click();
    await expectAttr(quiet, 'aria-pressed', 'true');
    await hide(true);
    const count = (await shown()).length;
    await writer.call('room.send', { room: ROOM, text: `@${READER} quiet please` });
    await writer.call('dm.send', { to: READER, text: 'after the quiet one' });
    await until('the private message', async () => (await shown()).length > count);
    assert.deepEqual((await shown()).slice(count).map((n) => n.body), ['after the quiet one']);

    // A visible tab shows none.
    await hide(false);
    await writer.call('dm.send', { to: READER, text: 'seen in the page' });
    // Arrived (its third unread) before the tab goes to the background again.
    const unread = page.getByTestId('sidebar-dms').locator(`[data-testid="sidebar-place"][data-name="${WRITER}"]`).getByTestId('sidebar-unread');
    await expectText(unread, '3');
    await hide(true);
    await writer.call('dm.send', { to: READER, text: 'hidden again' });
    await until('the last private message', async () => (await shown()).some((n) => n.body === 'hidden again'));
    assert.equal((await shown()).filter((n) => n.body === 'seen in the page').length, 0);
    await hide(false);
    await quiet.click();
    await expectAttr(quiet, 'aria-pressed', 'false');
  });

  test('a push delivered to the service worker is shown, and turning notifications off removes the device', async () => {
    const cdp = await page.context().newCDPSession(page);
    const registrations = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: r }) => registrations.push(...r));
    await cdp.send('ServiceWorker.enable');
    const registration = await until('the service worker', async () => registrations.find((r) => r.scopeURL === `${URL_BASE}/` && !r.isDeleted));
    const message = { kind: 'mention', conversation: ROOM, from: WRITER, preview: 'from the push service', url: `/rooms/${ROOM}` };
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: URL_BASE, registrationId: registration.registrationId, data: JSON.stringify(message) });
    const notifications = await until('the worker shows it', async () => {
      const list = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag })));
      return list.length > 0 && list;
    });
    assert.deepEqual(notifications, [{ title: `${WRITER} in #${ROOM}`, body: 'from the push service', tag: `mention:${ROOM}` }]);

    await page.getByTestId('nav-settings').click();
    const toggle = page.getByTestId('notifications-toggle');
    await until('on', async () => toggle.isChecked());
    await toggle.click();
    await expectText(page.getByTestId('notifications-status'), 'Off in this browser.');
    await expectCount(page.getByTestId('device-row'), 0);
    const listed = await api('GET', '/api/push/subscriptions', { token: await login(READER, PASSWORD) });
    assert.deepEqual(listed.body, []);
  });
});
