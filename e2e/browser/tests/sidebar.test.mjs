// The layout people use chat in every day: a sidebar beside every page with the rooms one
// has joined and one's private conversations, unread counts and the current one marked; a
// quick switcher (Ctrl+K) driven by the keyboard alone; a members panel that can be hidden;
// at phone width, the sidebar as a drawer. Every step waits on what the page shows.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { RpcClient, assertNoCspViolations, expectAttr, expectCount, expectText, launchBrowser, newPage, signupAndLogin, until } from '../lib/harness.mjs';
import { PASSWORD, logIn, openRoom, signUp } from '../lib/actions.mjs';

let browser;
/** @type {import('playwright-core').Page} */ let gina;
/** @type {RpcClient} */ let hugo;

const place = (page, list, name) => page.getByTestId(list).locator(`[data-testid="sidebar-place"][data-name="${name}"]`);

describe('The sidebar, the quick switcher and the phone layout', { concurrency: false }, () => {
  before(async () => {
    browser = await launchBrowser();
    gina = await newPage(browser);
    hugo = await RpcClient.connect(await signupAndLogin('hugo', PASSWORD));
  });

  after(async () => {
    hugo?.close();
    await browser?.close();
    assertNoCspViolations();
  });

  test('the rooms one joins are listed beside every page, the current one marked', async () => {
    await signUp(gina, 'gina');
    await expectCount(gina.getByTestId('sidebar-rooms').getByTestId('sidebar-place'), 0);
    await openRoom(gina, 'side-one');
    await openRoom(gina, 'side-two');
    await expectAttr(place(gina, 'sidebar-rooms', 'side-two'), 'aria-current', 'page');
    assert.equal(await place(gina, 'sidebar-rooms', 'side-one').getAttribute('aria-current'), null);
    // Another page keeps the sidebar; nothing is current there.
    await gina.getByTestId('nav-people').click();
    await until('no room marked current', async () => (await place(gina, 'sidebar-rooms', 'side-two').getAttribute('aria-current')) === null);
  });

  test('messages in another room and private messages show as unread counts', async () => {
    await hugo.call('room.join', { room: 'side-one' });
    await hugo.call('room.send', { room: 'side-one', text: 'while you were away' });
    await hugo.call('dm.send', { to: 'gina', text: 'a word in private' });
    // Following a link brings the room counts up to date; the DM arrived live.
    await place(gina, 'sidebar-rooms', 'side-two').click();
    await expectText(place(gina, 'sidebar-rooms', 'side-one').getByTestId('sidebar-unread'), '1');
    await expectText(place(gina, 'sidebar-dms', 'hugo').getByTestId('sidebar-unread'), '1');
    // Opening the room reads it.
    await place(gina, 'sidebar-rooms', 'side-one').click();
    await expectCount(place(gina, 'sidebar-rooms', 'side-one').getByTestId('sidebar-unread'), 0);
  });

  test('Ctrl+K opens the switcher; typing, arrows and Enter go to a room; Escape closes it', async () => {
    const composer = gina.getByTestId('composer-input');
    await composer.focus();
    await gina.keyboard.press('Control+k');
    const input = gina.getByTestId('switcher-input');
    await until('the switcher has focus', async () => input.evaluate((el) => el === document.activeElement));
    await input.pressSequentially('side');
    await expectText(gina.getByTestId('switcher-options').getByTestId('switcher-option').first(), '#side-one');
    await gina.keyboard.press('ArrowDown');
    const chosen = gina.locator('[data-testid="switcher-option"][aria-selected="true"]');
    await expectText(chosen, '#side-two');
    assert.equal(await input.getAttribute('aria-activedescendant'), await chosen.getAttribute('id'));
    await gina.keyboard.press('Enter');
    await gina.getByTestId('room-page').and(gina.locator('[data-room="side-two"]')).waitFor();

    // A name that matches nothing is offered as a new room and as a person; Escape closes.
    await gina.keyboard.press('Control+k');
    await input.pressSequentially('hugo');
    await expectText(gina.locator('[data-testid="switcher-option"][data-href="/dm/hugo"]'), 'hugo');
    await gina.keyboard.press('Escape');
    await until('the switcher closed', async () => !(await gina.getByTestId('switcher').evaluate((d) => d.open)));
  });

  test('the members panel can be hidden and shown again', async () => {
    const toggle = gina.getByTestId('members-toggle');
    await expectAttr(toggle, 'aria-expanded', 'true');
    await gina.getByTestId('room-members').waitFor({ state: 'visible' });
    await toggle.click();
    await expectAttr(toggle, 'aria-expanded', 'false');
    await gina.getByTestId('room-members').waitFor({ state: 'hidden' });
    await toggle.click();
    await gina.getByTestId('room-members').waitFor({ state: 'visible' });
  });

  test('at phone width the sidebar is a drawer the top bar opens and Escape closes', async () => {
    const phone = await newPage(browser, { viewport: { width: 390, height: 800 } });
    await logIn(phone, 'gina');
    const sidebar = phone.getByTestId('sidebar');
    const toggle = phone.getByTestId('drawer-toggle');
    await sidebar.waitFor({ state: 'hidden' });
    await expectAttr(toggle, 'aria-expanded', 'false');
    await toggle.click();
    await sidebar.waitFor({ state: 'visible' });
    await place(phone, 'sidebar-rooms', 'side-one').focus();
    await phone.keyboard.press('Escape');
    await sidebar.waitFor({ state: 'hidden' });
    await until('focus is back on the toggle', async () => toggle.evaluate((el) => el === document.activeElement));
    // Following a link closes the drawer.
    await toggle.click();
    await place(phone, 'sidebar-rooms', 'side-one').click();
    await phone.getByTestId('room-page').and(phone.locator('[data-room="side-one"]')).waitFor();
    await sidebar.waitFor({ state: 'hidden' });
    await phone.context().close();
  });
});
