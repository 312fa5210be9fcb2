// Mentions in a real browser: a program mentions a reader who has the rooms list open; the
// list counts the mention live and the tab title leads with it; opening the room shows the
// message highlighted and reads the mention away.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { PASSWORD, logIn, messageWithText, openRoom } from '../lib/actions.mjs';
import { RpcClient, assertNoCspViolations, expectText, launchBrowser, newPage, signupAndLogin, until } from '../lib/harness.mjs';

const ROOM = 'heads-up';

let browser;
let page;
let writer;

describe('Mentions', { concurrency: false }, () => {
  before(async () => {
    browser = await launchBrowser();
    page = await newPage(browser);
    await signupAndLogin('readerrita', PASSWORD);
    writer = await RpcClient.connect(await signupAndLogin('writerwes', PASSWORD));
    // The room exists before the reader's list loads.
    await writer.call('room.join', { room: ROOM, history: 0 });
  });

  after(async () => {
    writer?.close();
    await browser?.close();
    assertNoCspViolations();
  });

  test('a mention is counted live in the rooms list and in the tab title', async () => {
    await logIn(page, 'readerrita');
    await page.getByTestId('nav-rooms').click();
    const row = page.locator(`[data-testid="room-item"][data-room="${ROOM}"]`);
    await row.waitFor();
    assert.equal(await row.getByTestId('room-mentions').count(), 0);

    await writer.call('room.send', { room: ROOM, text: 'hey @ReaderRita, have a look' });

    await expectText(row.getByTestId('room-mentions'), '@1');
    assert.equal(await row.getByTestId('room-mentions').getAttribute('aria-label'), '1 mention');
    await until('the title counts the mention', async () => (await page.title()).startsWith('(1) '));
  });

  test('opening the room shows the mention highlighted and reads it', async () => {
    await openRoom(page, ROOM);
    const message = messageWithText(page, 'hey @ReaderRita, have a look');
    await until('the mention is highlighted', async () => (await message.getAttribute('class'))?.split(' ').includes('mentioned'));
    await until('the title no longer counts it', async () => !(await page.title()).startsWith('('));

    await writer.call('room.send', { room: ROOM, text: 'no mention here' });
    const plain = messageWithText(page, 'no mention here');
    await plain.waitFor();
    assert.ok(!(await plain.getAttribute('class')).split(' ').includes('mentioned'));
  });
});
