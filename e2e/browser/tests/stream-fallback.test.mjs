// The web app behind a proxy that refuses WebSocket upgrades (Debian's nginx with a plain
// `proxy_pass`, lib/proxy.mjs): it falls back to the HTTP stream, says so in its connection
// badge, and chats with someone on a WebSocket both ways (room messages, typing, presence,
// private messages), through a server restart with nothing lost or doubled. Behind a proxy
// that lets sockets open but cuts them after a second of silence, it falls back too.
//
// dana reaches the server through the proxy; erin reaches it directly. Every step waits on
// what the pages show.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  URL_BASE,
  assertNoCspViolations,
  expectAttr,
  expectCount,
  expectText,
  launchBrowser,
  newPage,
  startServer,
  stopServer,
  until,
} from '../lib/harness.mjs';
import { messageTexts, messageWithText, messages, openRoom, send, signUp } from '../lib/actions.mjs';
import { BreakingProxy } from '../lib/proxy.mjs';

const ROOM = 'behind-the-proxy';

let browser;
let proxy;
/** @type {import('playwright-core').Page} */ let dana;
/** @type {import('playwright-core').Page} */ let erin;

function badge(page) {
  return page.getByTestId('connection-state');
}

describe('The web app behind proxies that break WebSockets', { concurrency: false }, () => {
  before(async () => {
    proxy = await BreakingProxy.start(URL_BASE, 'refusing');
    browser = await launchBrowser();
    dana = await newPage(browser, { baseURL: proxy.url });
    erin = await newPage(browser);
  });

  after(async () => {
    await browser?.close();
    await proxy?.stop();
    assertNoCspViolations();
  });

  test('the page behind the proxy connects over the HTTP stream and its badge says so', async () => {
    await signUp(dana, 'dana');
    await expectAttr(badge(dana), 'data-transport', 'stream');
    await expectText(badge(dana), 'Connected · HTTP stream');
    // The badge is a status region: screen readers read the transport with the state.
    assert.equal(await badge(dana).getAttribute('role'), 'status');

    await signUp(erin, 'erin');
    await expectAttr(badge(erin), 'data-transport', 'websocket');
    await expectText(badge(erin), 'Connected · WebSocket');
    assert.ok(erin.sockets.length > 0, 'the direct page uses a WebSocket');
  });

  test('a person on the stream and a person on a WebSocket chat both ways, with presence and typing', async () => {
    await openRoom(dana, ROOM);
    await openRoom(erin, ROOM);
    // Presence both ways: each sees the other among the room's members.
    await dana.locator('[data-testid="room-member"][data-username="erin"]').waitFor();
    await erin.locator('[data-testid="room-member"][data-username="dana"]').waitFor();

    // Typing both ways (notifications out of the stream page are POSTs too), before either
    // has typed anything: the server takes one `room.typing` per 2 s and drops the rest.
    await dana.getByTestId('composer-input').pressSequentially('dana, thr', { delay: 20 });
    await expectText(erin.getByTestId('typing-indicator'), 'dana is typing');
    await erin.getByTestId('composer-input').pressSequentially('erin, on', { delay: 20 });
    await expectText(dana.getByTestId('typing-indicator'), 'erin is typing');

    await send(dana, 'dana, through the proxy');
    await messageWithText(erin, 'dana, through the proxy').waitFor();
    await send(erin, 'erin, on a socket');
    await messageWithText(dana, 'erin, on a socket').waitFor();

    await expectCount(messages(dana), 2);
    await expectCount(messages(erin), 2);
  });

  test('private messages flow both ways between the stream and the socket', async () => {
    await dana.locator('[data-testid="room-member"][data-username="erin"] a').click();
    await dana.locator('[data-testid="dm-page"][data-with="erin"]').waitFor();
    await send(dana, 'a private word over HTTP');
    await expectText(dana.getByTestId('dm-receipt'), 'Delivered');
    await expectText(erin.getByTestId('dm-unread-total'), '1');

    await send(erin, '/pm dana and one back over the socket');
    await expectText(erin.getByTestId('toast-info'), 'Private message delivered to dana');
    await expectText(dana.getByTestId('dm-message').last(), 'and one back over the socket');
    await expectCount(dana.getByTestId('dm-message'), 2);
  });

  test('after a server restart the stream page catches up on what it missed, exactly once', async () => {
    await openRoom(dana, ROOM);
    await expectCount(messages(dana), 2);
    const before = await messageTexts(dana);

    await stopServer();
    await until('dana to notice', async () => (await badge(dana).getAttribute('data-state')) !== 'connected');
    // Keep dana away while erin writes, so the page must catch up with `sync`.
    await dana.context().setOffline(true);
    await startServer();
    await expectAttr(badge(erin), 'data-state', 'connected');
    const missed = ['erin while dana was away #1', 'erin while dana was away #2', 'erin while dana was away #3'];
    for (const text of missed) await send(erin, text);
    await send(erin, '/pm dana privately, while you were away');
    await expectText(erin.getByTestId('toast-info'), 'Private message delivered to dana');

    await dana.context().setOffline(false);
    await expectAttr(badge(dana), 'data-state', 'connected');
    await expectText(badge(dana), 'Connected · HTTP stream');
    await expectCount(messages(dana), before.length + missed.length);
    assert.deepEqual(await messageTexts(dana), [...before, ...missed]);
    await expectText(dana.getByTestId('dm-unread-total'), '1');

    // Live traffic flows again, exactly once, both ways.
    await send(dana, 'dana after the restart');
    await messageWithText(erin, 'dana after the restart').waitFor();
    for (const page of [dana, erin]) {
      await expectCount(messages(page), before.length + missed.length + 1);
      const texts = await messageTexts(page);
      assert.equal(new Set(texts).size, texts.length, 'no message is shown twice');
    }
  });

  test('behind a proxy that cuts sockets right after they open, the page moves to the HTTP stream', async () => {
    const killing = await BreakingProxy.start(URL_BASE, 'killing');
    try {
      const page = await newPage(browser, { baseURL: killing.url });
      await page.goto('/rooms/' + ROOM);
      // Anonymous readers connect too: two sockets cut without a close frame within 5 s
      // of opening, then the stream.
      await until('two sockets to open', async () => page.sockets.length >= 2);
      await expectAttr(badge(page), 'data-transport', 'stream');
      await expectText(badge(page), 'Connected · HTTP stream');
      await page.context().close();
    } finally {
      await killing.stop();
    }
  });
});
