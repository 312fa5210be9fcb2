// The Confab SPA in a real browser (Chromium), against a real release server.
//
// One story, step by step, with two people in separate browser profiles (alice and bob),
// a third program on a plain WebSocket (carol), an anonymous visitor and an admin. Every
// step asserts on what the page shows: visible text, counted rows, data-* attributes.
// The steps share state, so they run in order and a failure skips the rest.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import {
  RpcClient,
  api,
  assertNoCspViolations,
  createAdmin,
  expectAttr,
  expectCount,
  expectText,
  launchBrowser,
  login,
  newPage,
  screenshot,
  signupAndLogin,
  sleep,
  startServer,
  stopServer,
  until,
} from '../lib/harness.mjs';
import { PASSWORD, messageTexts, messageWithText, messages, openRoom, send, signUp } from '../lib/actions.mjs';

const ROOM = 'lobby';

const ACCESS_TTL_MS = Number(process.env.CONFAB_ACCESS_TTL_SECS ?? 900) * 1000;

let browser;
/** alice's socket count and token after the restart, to check token renewal later. */
let tokenMark;
/** @type {import('playwright-core').Page} */ let alice;
/** @type {import('playwright-core').Page} */ let bob;

async function storedAccessToken(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('confab.session') ?? 'null')?.access_token ?? null);
}

describe('Confab SPA', { concurrency: false }, () => {
  before(async () => {
    browser = await launchBrowser();
    alice = await newPage(browser);
    bob = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    // The whole story ran under the server's Content-Security-Policy.
    assertNoCspViolations();
  });

  test('sign-up and log-in errors are shown readably', async () => {
    await alice.goto('/login');
    await alice.getByTestId('login-form').waitFor();
    await screenshot(alice, 'login');

    // alice signs up; then a second sign-up with the same name is refused.
    await signUp(alice, 'alice');
    await bob.goto('/signup');
    await bob.getByTestId('signup-username').fill('ALICE');
    await bob.getByTestId('signup-password').fill(PASSWORD);
    await bob.getByTestId('signup-confirm').fill(PASSWORD);
    await bob.getByTestId('signup-submit').click();
    await expectText(bob.getByTestId('field-error'), 'Username is taken');

    // Client-side checks use the same rules as the server.
    await bob.getByTestId('signup-username').fill('b');
    await bob.getByTestId('signup-submit').click();
    await expectText(bob.getByTestId('field-error'), 'Username');

    // Wrong password: the server's words, not a generic failure.
    await bob.goto('/login');
    await bob.getByTestId('login-username').fill('alice');
    await bob.getByTestId('login-password').fill('not the password');
    await bob.getByTestId('login-submit').click();
    await expectText(bob.getByTestId('form-error'), 'Invalid username or password');
    await assert.rejects(bob.getByTestId('current-user').waitFor({ timeout: 500 }));

    // Guessing is throttled (5 failures per name): the 429 says how long to wait.
    await bob.getByTestId('login-username').fill('mallory');
    const throttled = async () => (await bob.getByTestId('form-error').allInnerTexts()).some((t) => t.includes('Too many requests'));
    for (let attempt = 1; attempt <= 10 && !(await throttled()); attempt++) {
      await bob.getByTestId('login-password').fill(`guess number ${attempt}`);
      await bob.getByTestId('login-submit').click();
      // Each answer replaces the error text; wait for this attempt's.
      await until('the attempt to be answered', async () => !(await bob.getByTestId('login-submit').isDisabled()) && (await bob.getByTestId('form-error').count()) > 0);
      await sleep(50);
    }
    await expectText(bob.getByTestId('form-error'), 'Too many requests. Try again in');
  });

  test('two people see each other come online', async () => {
    await alice.getByTestId('nav-people').click();
    await alice.getByTestId('user-list').waitFor();
    await assert.equal(await alice.locator('[data-testid="user-item"][data-username="bob"]').count(), 0);

    await signUp(bob, 'bob');
    // The list is a page, not a feed of sign-ups: a refresh shows the newcomer, Online.
    await alice.getByTestId('people-refresh').click();
    const bobRow = alice.locator('[data-testid="user-item"][data-username="bob"]');
    await expectAttr(bobRow.getByTestId('presence-badge'), 'data-online', 'true');
    await expectText(bobRow.getByTestId('presence-badge'), 'Online');

    await bob.getByTestId('nav-people').click();
    const aliceRow = bob.locator('[data-testid="user-item"][data-username="alice"]');
    await expectText(aliceRow.getByTestId('presence-badge'), 'Online');

    // A third account that is not connected shows as Offline; it comes online live.
    const carolToken = await signupAndLogin('carol', PASSWORD);
    const carolRow = alice.locator('[data-testid="user-item"][data-username="carol"]');
    await alice.reload();
    await expectText(carolRow.getByTestId('presence-badge'), 'Offline');
    const carol = await RpcClient.connect(carolToken);
    await expectText(carolRow.getByTestId('presence-badge'), 'Online');
    await screenshot(alice, 'online');
    carol.close();
    await expectText(carolRow.getByTestId('presence-badge'), 'Offline');
  });

  test('People pages 50 at a time, searches by name prefix and filters online users', async () => {
    // 50 more accounts over REST: the community no longer fits one page.
    for (let i = 0; i < 50; i += 1) {
      const signup = await api('POST', '/api/auth/signup', { body: { username: `crowd${String(i).padStart(2, '0')}`, password: PASSWORD } });
      assert.equal(signup.status, 201, JSON.stringify(signup.body));
    }
    const everyone = (await api('GET', '/api/users?limit=1')).body;
    const online = (await api('GET', '/api/users?online=true&limit=200')).body.users.length;
    await alice.getByTestId('people-refresh').click();
    await expectText(alice.getByTestId('online-summary'), `${everyone.online} online · ${everyone.total} members`);
    await expectCount(alice.getByTestId('user-item'), 50);
    await alice.getByTestId('people-next').click();
    await expectCount(alice.getByTestId('user-item'), everyone.total - 50);
    await alice.getByTestId('people-prev').click();
    await expectCount(alice.getByTestId('user-item'), 50);

    await alice.getByTestId('user-filter').fill('CARO');
    await expectCount(alice.getByTestId('user-item'), 1);
    await alice.locator('[data-testid="user-item"][data-username="carol"]').waitFor();
    await alice.getByTestId('user-filter').fill('');
    await alice.getByTestId('online-only').check();
    await expectCount(alice.getByTestId('user-item'), online);
    await expectAttr(alice.locator('[data-testid="user-item"][data-username="bob"]').getByTestId('presence-badge'), 'data-online', 'true');
    await alice.getByTestId('online-only').uncheck();
    await expectCount(alice.getByTestId('user-item'), 50);
  });

  test('chat in a room both ways, with joins, typing and author + time', async () => {
    await openRoom(alice, ROOM);
    await expectText(alice.getByTestId('log-empty'), 'No messages yet');

    // bob finds the room in the picker with its online count and clicks it.
    await bob.getByTestId('nav-rooms').click();
    const row = bob.locator(`[data-testid="room-item"][data-room="${ROOM}"]`);
    await expectAttr(row.getByTestId('room-online-count'), 'data-count', '1');
    await expectText(row.getByTestId('room-online-count'), '1 online');
    await screenshot(bob, 'rooms');
    await row.locator('a').first().click();
    await bob.getByTestId('room-page').waitFor();

    await expectText(alice.getByTestId('room-event'), 'bob joined');
    await alice.locator('[data-testid="room-member"][data-username="bob"]').waitFor();
    await expectText(alice.getByTestId('room-online-total'), '2 online');

    await send(alice, 'hello from alice');
    await expectText(messageWithText(bob, 'hello from alice').getByTestId('message-author'), 'alice');
    assert.match(await messageWithText(bob, 'hello from alice').getByTestId('message-time').innerText(), /\d\d:\d\d/);

    // bob types: alice sees the indicator, then the message.
    await bob.getByTestId('composer-input').pressSequentially('hi al', { delay: 20 });
    await expectText(alice.getByTestId('typing-indicator'), 'bob is typing');
    await bob.getByTestId('composer-input').fill('hi alice');
    await bob.getByTestId('composer-input').press('Enter');
    await messageWithText(alice, 'hi alice').waitFor();
    await until('typing indicator cleared', async () => !(await alice.getByTestId('typing-indicator').innerText()).includes('typing'));

    await send(alice, 'how are you?');
    await messageWithText(bob, 'how are you?').waitFor();
    await expectCount(messages(alice), 3);
    await expectCount(messages(bob), 3);
    assert.deepEqual(await messageTexts(bob), ['hello from alice', 'hi alice', 'how are you?']);
  });

  test('edit (Enter saves, Esc cancels), delete and react', async () => {
    const mine = messageWithText(alice, 'how are you?');
    await mine.hover();
    await mine.getByTestId('edit-button').click();
    await alice.getByTestId('edit-input').fill('this will be cancelled');
    await alice.getByTestId('edit-input').press('Escape');
    await expectCount(alice.getByTestId('edit-input'), 0);
    await expectText(mine.getByTestId('message-text'), 'how are you?');

    await mine.hover();
    await mine.getByTestId('edit-button').click();
    await alice.getByTestId('edit-input').fill('how are you doing?');
    await alice.getByTestId('edit-input').press('Enter');
    const edited = bob.locator('[data-testid="message"]', { hasText: 'how are you doing?' });
    await expectText(edited.getByTestId('message-edited'), 'edited');

    // Only your own messages can be edited.
    const theirs = messageWithText(alice, 'hi alice');
    await theirs.hover();
    assert.equal(await theirs.getByTestId('edit-button').count(), 0);

    // bob reacts to alice's first message; alice sees the chip and adds hers.
    const first = messageWithText(bob, 'hello from alice');
    await first.hover();
    await first.getByTestId('react-button').click();
    await bob.locator('[data-testid="react-option"][data-emoji="👍"]').click();
    const chip = messageWithText(alice, 'hello from alice').locator('[data-testid="reaction"][data-emoji="👍"]');
    await expectAttr(chip, 'data-count', '1');
    await expectAttr(chip, 'aria-pressed', 'false');
    await chip.click();
    await expectAttr(chip, 'data-count', '2');
    await expectAttr(chip, 'aria-pressed', 'true');
    await expectAttr(first.locator('[data-testid="reaction"][data-emoji="👍"]'), 'data-count', '2');

    // alice deletes a message; it stays in place, marked deleted, on both sides.
    await send(alice, 'oops, wrong room');
    const oops = messageWithText(bob, 'oops, wrong room');
    await oops.waitFor();
    const oopsId = await oops.getAttribute('data-id');
    const ownOops = messageWithText(alice, 'oops, wrong room');
    await ownOops.hover();
    await ownOops.getByTestId('delete-button').click();
    const deleted = bob.locator(`[data-testid="message"][data-id="${oopsId}"]`);
    await expectText(deleted.getByTestId('message-text'), 'This message was deleted.');
    await expectCount(messages(bob), 4);
    await screenshot(alice, 'room');
  });

  test('a burst of calls keeps at most 64 in flight, and every one is answered', async () => {
    // alice's socket, watched from a reload on: each call's id from the frame that sends it
    // to the frame that answers it.
    const waiting = new Set();
    let sent = 0;
    let answered = 0;
    let peak = 0;
    const watch = (ws) => {
      ws.on('framesent', ({ payload }) => {
        const frame = JSON.parse(String(payload));
        if (frame.method === 'message.react' && frame.id != null) {
          waiting.add(frame.id);
          sent += 1;
          peak = Math.max(peak, waiting.size);
        }
      });
      ws.on('framereceived', ({ payload }) => {
        const frame = JSON.parse(String(payload));
        if (frame.id != null && waiting.delete(frame.id)) answered += 1;
      });
    };
    alice.on('websocket', watch);
    await alice.reload();
    const chip = messageWithText(alice, 'hello from alice').locator('[data-testid="reaction"][data-emoji="👍"]');
    await expectAttr(chip, 'data-count', '2');
    // 80 clicks in one task: every click starts a call before any answer can arrive, so
    // without a window all 80 would be in flight at once. (80 stays inside the connection's
    // rate-limit burst, so none is refused.)
    const CLICKS = 80;
    await chip.evaluate((el, clicks) => {
      for (let i = 0; i < clicks; i += 1) el.click();
    }, CLICKS);
    await until('every call answered', () => answered === CLICKS);
    alice.off('websocket', watch);
    assert.equal(sent, CLICKS);
    assert.equal(peak, 64, 'the calls in flight at once');
    // The 80 toggles all asked for the same state: alice's reaction is off.
    await expectAttr(chip, 'data-count', '1');
  });

  test('errors in a room are shown readably and keep what was typed', async () => {
    const input = alice.getByTestId('composer-input');
    await input.fill('x'.repeat(4001));
    await expectText(alice.getByTestId('composer-count'), '4001/4000');
    await input.press('Enter');
    await expectText(alice.getByTestId('toast-error'), 'Message must be at most 4000 characters.');
    assert.equal((await input.inputValue()).length, 4001, 'the text is kept');
    await input.fill('');

    // A server refusal over the socket: a private message to nobody.
    await send(alice, '/pm nosuchuser hello?');
    await expectText(alice.getByTestId('toast-error'), 'Private message to nosuchuser not sent');
    await expectCount(messages(alice), 4);
  });

  test('private messages: open from the member list, receipt, unread count, /pm', async () => {
    // alice clicks bob in the room's member list.
    await alice.locator('[data-testid="room-member"][data-username="bob"] a').click();
    await alice.locator('[data-testid="dm-page"][data-with="bob"]').waitFor();
    await send(alice, 'psst, a private word');
    const sent = alice.getByTestId('dm-message').filter({ hasText: 'psst, a private word' });
    await sent.waitFor();
    await expectText(alice.getByTestId('dm-receipt'), 'Delivered');

    // bob, still in the room, gets an unread count in the header and in the list.
    await expectText(bob.getByTestId('dm-unread-total'), '1');
    await bob.getByTestId('nav-dm').click();
    const convo = bob.locator('[data-testid="dm-item"][data-with="alice"]');
    await expectText(convo.getByTestId('dm-unread'), '1');
    await convo.locator('a').first().click();
    await expectText(bob.getByTestId('dm-message').first(), 'psst, a private word');
    await expectCount(bob.getByTestId('dm-unread-total'), 0);

    // /pm from a room's composer.
    await openRoom(bob, ROOM);
    await send(bob, '/pm alice answered via /pm');
    await expectText(bob.getByTestId('toast-info'), 'Private message delivered to alice');
    await expectText(alice.getByTestId('dm-message').last(), 'answered via /pm');
    await expectCount(alice.getByTestId('dm-message'), 2);
    await expectText(alice.getByTestId('dm-receipt'), 'Delivered');
    await screenshot(alice, 'private-messages');
    // A /pm is not posted to the room.
    await expectCount(messages(bob), 4);
  });

  test('server restart: both tabs reconnect and catch up, nothing missed or doubled', async () => {
    await openRoom(alice, ROOM);
    await expectCount(messages(alice), 4);
    const before = await messageTexts(alice);
    const carolToken = await login('carol', PASSWORD);

    await stopServer();
    for (const page of [alice, bob]) {
      await until('the badge to leave "connected"', async () => (await page.getByTestId('connection-state').getAttribute('data-state')) !== 'connected');
      await expectText(page.getByTestId('connection-state'), 'Reconnecting');
      // Sending is disabled while disconnected.
      assert.equal(await page.getByTestId('composer-send').isDisabled(), true);
    }
    // Keep the browsers away while carol writes, so they must catch up with `sync`.
    await alice.context().setOffline(true);
    await bob.context().setOffline(true);
    await startServer();
    for (const page of [alice, bob]) await expectAttr(page.getByTestId('connection-state'), 'data-state', 'offline');

    const carol = await RpcClient.connect(carolToken);
    await carol.call('room.join', { room: ROOM, history: 0 });
    const missed = [];
    for (let i = 1; i <= 60; i++) {
      const text = `carol while you were away #${i}`;
      await carol.call('room.send', { room: ROOM, text });
      missed.push(text);
    }
    await carol.call('dm.send', { to: 'bob', text: 'carol, privately, while you were away' });

    await alice.context().setOffline(false);
    await bob.context().setOffline(false);
    for (const page of [alice, bob]) {
      await expectAttr(page.getByTestId('connection-state'), 'data-state', 'connected', 30_000);
      await expectCount(messages(page), 4 + missed.length);
      assert.deepEqual(await messageTexts(page), [...before, ...missed]);
    }
    await expectText(bob.getByTestId('dm-unread-total'), '1');

    // Live traffic flows again, exactly once, both ways.
    await carol.call('room.send', { room: ROOM, text: 'carol is back live' });
    await send(bob, 'bob after the restart');
    for (const page of [alice, bob]) {
      await messageWithText(page, 'bob after the restart').waitFor();
      await messageWithText(page, 'carol is back live').waitFor();
      await expectCount(messages(page), 6 + missed.length);
      const texts = await messageTexts(page);
      assert.equal(new Set(texts).size, texts.length, 'no message is shown twice');
    }
    carol.close();
    tokenMark = { at: Date.now(), sockets: alice.sockets.length, token: await storedAccessToken(alice) };
  });

  test('an anonymous visitor can read a room and page back, but not send', async () => {
    const visitor = await newPage(browser);
    await visitor.goto(`/rooms/${ROOM}`);
    await expectAttr(visitor.getByTestId('connection-state'), 'data-state', 'connected');
    // The join brings the newest 50; "load earlier" fetches the rest.
    await expectCount(messages(visitor), 50);
    await visitor.getByTestId('load-earlier').click();
    await expectCount(messages(visitor), 66);
    assert.deepEqual(await messageTexts(visitor), await messageTexts(alice));
    await visitor.getByTestId('login-prompt').waitFor();
    assert.equal(await visitor.getByTestId('composer-input').count(), 0);
    // It still sees live messages.
    await send(alice, 'hello, visitor');
    await messageWithText(visitor, 'hello, visitor').waitFor();
    await visitor.context().close();
  });

  test('export history: live progress, then a working download', async () => {
    await alice.getByTestId('export-button').click();
    const exportRow = alice.getByTestId('export').first();
    await exportRow.waitFor();
    await expectAttr(exportRow, 'data-state', 'done');
    await expectText(exportRow.getByTestId('export-status'), 'Export ready');
    await expectAttr(exportRow.getByTestId('export-progress'), 'value', '100');
    await screenshot(alice, 'export');

    const link = exportRow.getByTestId('export-download');
    assert.match(await link.getAttribute('href'), /^blob:/);
    const [download] = await Promise.all([alice.waitForEvent('download'), link.click()]);
    assert.match(download.suggestedFilename(), /^lobby-export-\d+\.json$/);
    const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.ok(Array.isArray(exported));
    const texts = exported.filter((m) => !m.deleted).map((m) => m.text);
    assert.ok(texts.includes('hello from alice'));
    assert.ok(texts.includes('carol while you were away #60'));
    assert.equal(exported.length, await messages(alice).count());

    // CSV too; each export gets its own row.
    await alice.getByTestId('export-format').selectOption('csv');
    await alice.getByTestId('export-button').click();
    const csvRow = alice.getByTestId('export').nth(1);
    await expectAttr(csvRow, 'data-state', 'done');
    const csvLink = csvRow.getByTestId('export-download');
    await csvLink.waitFor();
    const [csvDownload] = await Promise.all([alice.waitForEvent('download'), csvLink.click()]);
    assert.match(csvDownload.suggestedFilename(), /^lobby-export-\d+\.csv$/);
    const csv = await readFile(await csvDownload.path(), 'utf8');
    assert.ok(csv.startsWith('id,room,author,text,sent_at,edited_at,deleted'), csv.slice(0, 80));
    assert.ok(csv.includes('carol while you were away #60'));
    await csvRow.getByTestId('export-dismiss').click();
    await expectCount(alice.getByTestId('export'), 1);
  });

  test('admin notices show as toasts; admin-only rooms are for admins only', async () => {
    createAdmin('root', PASSWORD);
    const rootToken = await login('root', PASSWORD);
    const published = await api('POST', '/api/publish', { token: rootToken, body: { target: { all: true }, payload: { text: 'Maintenance at 17:00' } } });
    assert.equal(published.status, 202);
    await expectText(alice.getByTestId('toast-info').filter({ hasText: 'Maintenance' }), 'Notice: Maintenance at 17:00');
    await expectText(bob.getByTestId('toast-info').filter({ hasText: 'Maintenance' }), 'Notice: Maintenance at 17:00');

    const created = await api('POST', '/api/rooms', { token: rootToken, body: { name: 'staff', admin_only: true } });
    assert.equal(created.status, 201);
    await bob.getByTestId('nav-rooms').click();
    await bob.locator(`[data-testid="room-item"][data-room="${ROOM}"]`).waitFor();
    assert.equal(await bob.locator('[data-testid="room-item"][data-room="staff"]').count(), 0);
    await bob.goto('/rooms/staff');
    await bob.getByTestId('room-error').waitFor();

    const admin = await newPage(browser);
    await admin.goto('/login');
    await admin.getByTestId('login-username').fill('root');
    await admin.getByTestId('login-password').fill(PASSWORD);
    await admin.getByTestId('login-submit').click();
    await expectText(admin.getByTestId('current-user'), 'root');
    const staff = admin.locator('[data-testid="room-item"][data-room="staff"]');
    await staff.getByTestId('room-admin-badge').waitFor();
    await staff.locator('a').first().click();
    await admin.locator('[data-testid="room-page"][data-room="staff"]').waitFor();
    await send(admin, 'admins only in here');
    await messageWithText(admin, 'admins only in here').waitFor();
    await admin.context().close();
  });

  test('phone width: the room is usable and Enter sends', async () => {
    const phone = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.goto('/login');
    await phone.getByTestId('login-username').fill('bob');
    await phone.getByTestId('login-password').fill(PASSWORD);
    await phone.getByTestId('login-submit').click();
    await expectText(phone.getByTestId('current-user'), 'bob');
    await openRoom(phone, ROOM);
    await send(phone, 'sent from a phone');
    await messageWithText(alice, 'sent from a phone').waitFor();
    // Nothing overflows sideways.
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `page is ${overflow}px wider than the phone`);
    await screenshot(phone, 'room-phone');
    await phone.context().close();
  });

  test('the tab renews its access token before expiry without reconnecting', async () => {
    // The server runs with a short access-token lifetime; past it, a tab that did not
    // answer `session.expiring` would have been closed with 4001 and reconnected.
    await openRoom(bob, ROOM);
    const wait = tokenMark.at + ACCESS_TTL_MS + 5_000 - Date.now();
    if (wait > 0) await sleep(wait);
    await expectAttr(alice.getByTestId('connection-state'), 'data-state', 'connected');
    assert.equal(alice.sockets.length, tokenMark.sockets, 'the socket was not replaced');
    assert.notEqual(await storedAccessToken(alice), tokenMark.token, 'the access token was renewed');
    // The renewed session still works for the socket and for REST.
    await send(alice, 'still here after the token expired');
    await messageWithText(bob, 'still here after the token expired').waitFor();
    const me = await api('GET', '/api/me', { token: await storedAccessToken(alice) });
    assert.equal(me.status, 200);
    assert.equal(me.body.username, 'alice');
  });

  test('everything is served by Confab itself (no CDN)', async () => {
    const origin = new URL(alice.url()).origin;
    const foreign = [...alice.requests, ...bob.requests].filter(
      (url) =>
        ![`${origin}/`, `${origin.replace(/^http/, 'ws')}/`, 'blob:', 'data:'].some((allowed) => url.startsWith(allowed)),
    );
    assert.deepEqual(foreign, []);
    assert.ok(alice.requests.some((url) => url.endsWith('.wasm')), 'the app was loaded');
  });

  test('log out returns to an anonymous session and leaves nothing of the user in the browser', async () => {
    // bob's direct messages left previews and read cursors in localStorage, and his
    // refresh token lives in a cookie no script can read.
    const confabKeys = () => bob.evaluate(() => Object.keys(localStorage).filter((key) => key.startsWith('confab.')));
    assert.ok((await confabKeys()).some((key) => key.startsWith('confab.dm.')), 'DM previews were stored');
    const session = await bob.evaluate(() => localStorage.getItem('confab.session'));
    assert.ok(session && !session.includes('refresh'), `no refresh token in localStorage: ${session}`);
    const cookie = (await bob.context().cookies()).find((c) => c.name === 'confab_refresh');
    assert.ok(cookie, 'the refresh token is a cookie');
    assert.deepEqual([cookie.httpOnly, cookie.sameSite, cookie.path], [true, 'Strict', '/api/auth/session']);
    assert.equal(await bob.evaluate(() => document.cookie.includes('confab_refresh')), false, 'scripts cannot read it');

    await bob.getByTestId('logout-button').click();
    await bob.getByTestId('login-link').waitFor();
    await until('every confab.* key is gone', async () => (await confabKeys()).length === 0);
    await until('the refresh cookie is gone', async () => !(await bob.context().cookies()).some((c) => c.name === 'confab_refresh'));
    await expectText(bob.getByTestId('toast-info').filter({ hasText: 'logged out' }), 'You are logged out.');
    await bob.goto('/online');
    const bobRow = alice.locator('[data-testid="user-item"][data-username="bob"]');
    await alice.getByTestId('nav-people').click();
    await expectText(bobRow.getByTestId('presence-badge'), 'Offline');
  });
});
