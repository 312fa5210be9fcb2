// Moderation in a real browser: a room's owner, a moderator, two members and an admin, each
// in their own browser profile.
//
// The owner appoints a moderator and turns slow mode on in the room settings panel (a
// member then sees the wait instead of a failing composer); a member reports a message
// through the keyboard-usable message menu; the moderator mutes that member (whose composer
// then says why and until when, and says it again straight after a reload), unmutes them
// from the member menu, removes them (they read why and come back with "Rejoin") and bans
// another (who leaves the room view with the reason and no way back), then lifts that ban
// in the room settings panel (and the way back opens); the admin resolves the report on the Moderation page, reads the audit log
// (and filters it), then suspends an account and lifts the suspension. Every step waits on
// what the pages show. The steps share state and run in order.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { PASSWORD, logIn, messageWithText, openRoom, send } from '../lib/actions.mjs';
import { api, assertNoCspViolations, createAdmin, expectCount, expectText, launchBrowser, newPage, signupAndLogin, until } from '../lib/harness.mjs';

const ROOM = 'civic';

let browser;
/** @type {Record<string, import('playwright-core').Page>} */
const pages = {};

/** The `data-testid` of the focused element. */
function focused(page) {
  return page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? null);
}

/** Waits until the element with `testid` has the keyboard focus. */
async function focusOn(page, testid) {
  await until(`focus on ${testid}`, async () => (await focused(page)) === testid);
}

/** Opens the action menu of the message with `text` (its buttons show on hover or focus). */
async function openMessageMenu(page, text) {
  const message = messageWithText(page, text);
  await message.hover();
  await message.getByTestId('message-menu').click();
  await page.getByRole('menu').waitFor();
  return message;
}

describe('Moderation', { concurrency: false }, () => {
  before(async () => {
    browser = await launchBrowser();
    for (const name of ['owner', 'mod', 'member', 'troll', 'admin']) pages[name] = await newPage(browser);
    for (const name of ['ownerolga', 'modmia', 'membermo', 'trolltom']) await signupAndLogin(name, PASSWORD);
    createAdmin('adminada', PASSWORD);
  });

  after(async () => {
    await browser?.close();
    assertNoCspViolations();
  });

  test('the owner appoints a moderator and sets slow mode in the room settings panel; members get no panel', async () => {
    const { owner, member } = pages;
    await logIn(owner, 'ownerolga');
    await openRoom(owner, ROOM);
    await owner.getByTestId('room-settings-button').click();
    const panel = owner.getByTestId('room-settings');
    await expectText(panel, 'Owner: ownerolga');
    await panel.getByTestId('moderator-input').fill('modmia');
    await panel.getByTestId('moderator-add').click();
    await panel.locator('[data-testid="room-moderator"][data-username="modmia"]').waitFor();
    await expectText(owner.getByTestId('toast-info'), 'modmia is now a moderator');
    await panel.getByTestId('slow-mode-input').fill('60');
    await panel.getByTestId('room-settings-save').click();
    await expectText(panel.getByTestId('room-settings-saved'), 'Saved');

    await logIn(member, 'membermo');
    await openRoom(member, ROOM);
    assert.equal(await member.getByTestId('room-settings-button').count(), 0);
    assert.equal(await member.getByTestId('nav-moderation').count(), 0, 'the Moderation page is for admins');
  });

  test('a member reports a message from its menu, by keyboard, with a reason', async () => {
    const { member, troll } = pages;
    await logIn(troll, 'trolltom');
    await openRoom(troll, ROOM);
    await send(troll, 'cheap pills here');
    await send(member, 'hello everyone');
    // Slow mode (60 s, set by the owner): a member is told the rule, and a second message
    // within it holds the composer with the wait instead of failing silently.
    await expectText(member.getByTestId('slow-mode-hint'), 'one message every 60 s');
    await member.getByTestId('composer-input').fill('and again');
    await member.getByTestId('composer-input').press('Enter');
    await expectText(member.getByTestId('composer-slow-mode'), 'you can send your next message in');
    assert.equal(await member.getByTestId('composer-send').isDisabled(), true);

    const message = messageWithText(member, 'cheap pills here');
    await message.waitFor();
    await message.hover();
    const button = message.getByTestId('message-menu');
    await button.focus();
    await member.keyboard.press('Enter');
    // The menu opens on its first item; arrows move, Escape closes and gives focus back.
    await focusOn(member, 'report-button');
    assert.equal(await message.getByTestId('mute-button').count(), 0, 'a member cannot mute');
    await member.keyboard.press('ArrowDown');
    await focusOn(member, 'report-button');
    await member.keyboard.press('Escape');
    await expectCount(member.getByRole('menu'), 0);
    await focusOn(member, 'message-menu');

    await member.keyboard.press('Enter');
    await focusOn(member, 'report-button');
    await member.keyboard.press('Enter');
    const dialog = member.getByTestId('action-dialog');
    await expectText(dialog, "Report trolltom's message");
    await dialog.getByTestId('dialog-submit').click();
    await expectText(dialog.getByTestId('dialog-error'), 'Say what is wrong');
    await dialog.getByTestId('dialog-reason').fill('spam links');
    await dialog.getByTestId('dialog-submit').click();
    await expectText(member.getByTestId('toast-info'), 'Reported');
    await until('the dialog to close', async () => !(await dialog.isVisible()));
    await focusOn(member, 'message-menu');
  });

  test('the moderator mutes the member, whose composer says why and until when', async () => {
    const { mod, member } = pages;
    await logIn(mod, 'modmia');
    await openRoom(mod, ROOM);
    await openMessageMenu(mod, 'hello everyone');
    await mod.getByRole('menu').getByTestId('mute-button').click();
    const dialog = mod.getByTestId('action-dialog');
    await expectText(dialog, 'Mute membermo in #civic');
    await dialog.getByTestId('dialog-reason').fill('cool down');
    await dialog.getByTestId('dialog-duration').selectOption({ label: '1 hour' });
    await dialog.getByTestId('dialog-submit').click();
    await expectText(mod.getByTestId('toast-info'), 'membermo is muted in #civic until');

    const notice = member.getByTestId('composer-muted');
    await expectText(notice, 'You are muted in this room until');
    await expectText(notice, '(by modmia): cool down');
    await expectCount(member.getByTestId('composer-input'), 0);
  });

  test('the muted member reloads and is told at once; the moderator unmutes them from the member menu', async () => {
    const { mod, member } = pages;
    // A fresh load joins again: the mute comes with the join, before any send can fail.
    await member.reload();
    const notice = member.getByTestId('composer-muted');
    await expectText(notice, '(by modmia): cool down');
    await expectCount(member.getByTestId('composer-input'), 0);

    // The moderator's page learns who is muted as it joins, so the menu offers Unmute.
    await mod.reload();
    const row = mod.locator('[data-testid="room-member"][data-username="membermo"]');
    await row.getByTestId('member-menu').click();
    const menu = mod.getByRole('menu');
    await menu.getByTestId('unmute-button').waitFor();
    assert.equal(await menu.getByTestId('mute-button').count(), 0);
    await menu.getByTestId('unmute-button').click();
    await expectText(mod.getByTestId('toast-info'), 'membermo may write again');
    await member.getByTestId('composer-input').waitFor();
    await expectCount(notice, 0);
  });

  test('the moderator removes the member, who reads why and comes back with one button', async () => {
    const { mod, member } = pages;
    const row = mod.locator('[data-testid="room-member"][data-username="membermo"]');
    await row.getByTestId('member-menu').click();
    await mod.getByRole('menu').getByTestId('kick-button').click();
    const dialog = mod.getByTestId('action-dialog');
    await dialog.getByTestId('dialog-reason').fill('take a break');
    await dialog.getByTestId('dialog-submit').click();
    await expectText(mod.getByTestId('toast-info'), 'membermo was removed from #civic');

    await expectText(member.getByTestId('room-removed-why'), 'You were removed from #civic by modmia: take a break');
    await expectCount(member.getByTestId('composer-input'), 0);
    // A kick allows coming back: the button takes the focus, one Enter away.
    await focusOn(member, 'room-rejoin');
    await member.keyboard.press('Enter');
    await member.getByTestId('composer-input').waitFor();
    await expectCount(member.getByTestId('room-removed'), 0);
  });

  test('the moderator bans another member, who leaves the room view with the reason', async () => {
    const { mod, troll } = pages;
    // From the member list this time.
    const row = mod.locator('[data-testid="room-member"][data-username="trolltom"]');
    await row.getByTestId('member-menu').click();
    await mod.getByRole('menu').getByTestId('ban-button').click();
    const dialog = mod.getByTestId('action-dialog');
    await dialog.getByTestId('dialog-reason').fill('spam');
    await dialog.getByTestId('dialog-duration').selectOption({ label: 'Until lifted' });
    await dialog.getByTestId('dialog-submit').click();
    await expectText(mod.getByTestId('toast-info'), 'trolltom is banned from #civic until lifted');

    await expectText(troll.getByTestId('room-removed-why'), 'You are banned from #civic by modmia: spam');
    await expectCount(troll.getByTestId('composer-input'), 0);
    await expectCount(troll.getByTestId('message-log'), 0);
    // A ban until lifted has no way back but a moderator's.
    assert.equal(await troll.getByTestId('room-rejoin').count(), 0);
  });

  test('the moderator lifts the ban in the room settings panel, and the way back opens', async () => {
    const { mod, troll } = pages;
    await mod.getByTestId('room-settings-button').click();
    const row = mod.getByTestId('room-bans').locator('[data-testid="room-sanction"][data-username="trolltom"]');
    for (const text of ['spam', 'until lifted', 'modmia']) await expectText(row, text);
    await mod.getByTestId('mutes-empty').waitFor();
    await row.getByTestId('room-sanction-lift').click();
    await expectText(mod.getByTestId('toast-info'), 'trolltom may join the room again');
    await mod.getByTestId('bans-empty').waitFor();

    await expectText(troll.getByTestId('room-removed-why'), 'modmia lifted your ban from #civic');
    await troll.getByTestId('room-rejoin').click();
    await troll.getByTestId('composer-input').waitFor();
  });

  test('the admin resolves the report on the Moderation page and reads the audit log', async () => {
    const { admin } = pages;
    await logIn(admin, 'adminada');
    await admin.getByTestId('nav-moderation').click();
    const report = admin.getByTestId('report').filter({ hasText: 'cheap pills here' });
    await expectText(report.getByTestId('report-reason'), 'Reported by membermo');
    await report.getByTestId('report-action').selectOption('banned');
    await report.getByTestId('report-note').fill('banned by modmia');
    await report.getByTestId('report-resolve').click();
    await expectText(admin.getByTestId('toast-info'), 'resolved: banned');
    await admin.getByTestId('reports-empty').waitFor();
    await admin.getByTestId('reports-state').selectOption('resolved');
    await expectText(admin.getByTestId('report-resolution'), 'Resolved by adminada: banned (banned by modmia)');

    // The audit log has every step so far, newest first; the filters narrow it.
    await admin.getByTestId('audit-apply').click();
    const rows = admin.getByTestId('audit-row');
    for (const action of ['set_role', 'report', 'mute', 'ban', 'resolve_report']) {
      await admin.locator(`[data-testid="audit-row"][data-action="${action}"]`).first().waitFor();
    }
    assert.equal(await rows.first().getAttribute('data-action'), 'resolve_report');
    await admin.getByTestId('audit-action').selectOption('mute');
    await admin.getByTestId('audit-actor').fill('modmia');
    await admin.getByTestId('audit-apply').click();
    await until('only the mute', async () => (await rows.count()) === 1 && (await rows.first().getAttribute('data-action')) === 'mute');
    await expectText(rows.first(), 'cool down');
  });

  test('the admin suspends an account, which is logged out, and lifts the suspension', async () => {
    const { admin, member } = pages;
    await admin.getByTestId('suspensions-empty').waitFor();
    await admin.getByTestId('suspend-username').fill('membermo');
    await admin.getByTestId('suspend-reason').fill('repeated abuse');
    await admin.getByTestId('suspend-submit').click();
    const row = admin.locator('[data-testid="suspension"][data-username="membermo"]');
    await expectText(row, 'repeated abuse');
    await expectText(row, 'adminada');
    // Their tab is logged out; the server refuses them until the suspension is lifted.
    await member.getByTestId('login-link').waitFor();
    assert.equal((await api('POST', '/api/auth/login', { body: { username: 'membermo', password: PASSWORD } })).status, 403);

    await row.getByTestId('unsuspend-button').click();
    await admin.getByTestId('suspensions-empty').waitFor();
    assert.equal((await api('POST', '/api/auth/login', { body: { username: 'membermo', password: PASSWORD } })).status, 200);
  });
});
