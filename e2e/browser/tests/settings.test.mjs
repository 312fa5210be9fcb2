// The Settings page in a real browser: API tokens and webhooks, end to end.
//
// A person creates an API token in the page, a program (this test) uses its secret on the
// REST API and on the socket, the person revokes it in the page and the server refuses it.
// An admin registers a webhook pointing at a receiver this test runs on 127.0.0.1 (the
// suite's server allows private destinations and retries only after minutes, so the only
// second attempt is the one the Retry button asks for), watches a delivery fail, retries it
// from the page, and deletes the webhook. The steps share state and run in order.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { PASSWORD, logIn, signUp } from '../lib/actions.mjs';
import { RpcClient, api, assertNoCspViolations, createAdmin, expectAttr, expectCount, expectText, launchBrowser, login, newPage, until } from '../lib/harness.mjs';
import { signatureValid, startReceiver } from '../lib/receiver.mjs';

const ROOM = 'hooks';

let browser;
/** @type {import('playwright-core').Page} */ let person;
/** @type {import('playwright-core').Page} */ let admin;
let receiver;

function tokenRow(page, name) {
  return page.locator(`[data-testid="token-row"][data-name="${name}"]`);
}

async function openSettings(page) {
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('settings-page').waitFor();
}

describe('Settings', { concurrency: false }, () => {
  before(async () => {
    browser = await launchBrowser();
    person = await newPage(browser);
    receiver = await startReceiver();
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    assertNoCspViolations();
  });

  test('Settings is for signed-in people, linked from the header', async () => {
    await person.goto('/settings');
    await person.getByTestId('login-prompt').waitFor();
    assert.equal(await person.getByTestId('nav-settings').count(), 0, 'no Settings link while logged out');
    await signUp(person, 'tokenfan');
    await openSettings(person);
    await expectText(person.getByTestId('tokens-empty'), 'No tokens yet');
    // Webhooks are for admins; publish is a scope only an admin's token may have.
    assert.equal(await person.getByTestId('webhooks-section').count(), 0);
    assert.equal(await person.locator('[data-testid="token-scopes"] input[data-value="publish"]').count(), 0);
    assert.equal(await person.locator('[data-testid="token-scopes"] input[data-value="read"]').isChecked(), true);
  });

  test('the token form says what is wrong and keeps what was typed', async () => {
    const form = person.getByTestId('token-form');
    // Checked in the page: no name, no scope, a lifetime out of range.
    await person.locator('[data-testid="token-scopes"] input[data-value="read"]').uncheck();
    await person.getByTestId('token-days').fill('5000');
    await person.getByTestId('token-create').click();
    await expectCount(form.getByTestId('field-error'), 3);
    await expectText(form.getByTestId('field-error'), 'Give the token a name');
    await expectText(form.getByTestId('field-error'), 'Choose at least one scope');
    await expectText(form.getByTestId('field-error'), 'from 1 to 3650');

    // Refused by the server: its problem+json detail lands next to the field it names.
    await person.getByTestId('token-name').fill('ci-bot');
    await person.locator('[data-testid="token-scopes"] input[data-value="read"]').check();
    await person.locator('[data-testid="token-scopes"] input[data-value="write"]').check();
    await person.getByTestId('token-days').fill('30');
    await person.route('**/api/tokens', (route) =>
      route.request().method() === 'POST'
        ? route.fulfill({
            status: 422,
            contentType: 'application/problem+json',
            body: JSON.stringify({ type: '/problems/validation', title: 'Invalid request', status: 422, detail: 'name: is already taken by the test', field: 'name' }),
          })
        : route.continue(),
    );
    await person.getByTestId('token-create').click();
    await expectText(form.getByTestId('field-error'), 'Name: is already taken by the test');
    await expectCount(form.getByTestId('field-error'), 1);
    await person.unroute('**/api/tokens');
    assert.equal(await person.getByTestId('token-name').inputValue(), 'ci-bot');
    assert.equal(await person.getByTestId('token-days').inputValue(), '30');
    assert.equal(await person.locator('[data-testid="token-scopes"] input[data-value="write"]').isChecked(), true);
    assert.equal(await person.getByTestId('token-secret').count(), 0, 'nothing was created');
  });

  let secret;

  test('a created token is shown once, copies, and works for REST and the socket', async () => {
    await person.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await person.getByTestId('token-create').click();
    const box = person.getByTestId('token-secret');
    await box.waitFor();
    secret = await box.inputValue();
    assert.match(secret, /^cfb_[A-Za-z0-9_-]{43}$/);
    // The form is ready for the next one.
    assert.equal(await person.getByTestId('token-name').inputValue(), '');

    await person.getByTestId('token-secret-copy').click();
    await expectText(person.getByTestId('token-secret-copy-status'), 'Copied');
    assert.equal(await person.evaluate(() => navigator.clipboard.readText()), secret);

    const row = tokenRow(person, 'ci-bot');
    await expectText(row.getByTestId('token-row-scopes'), 'read, write');
    await expectText(row.getByTestId('token-row-last-used'), 'Never');
    assert.notEqual(await row.getByTestId('token-row-expires').innerText(), 'Never');

    // A program uses it: REST and the socket accept it; managing tokens needs a login.
    const users = await api('GET', '/api/users?prefix=tokenfan', { token: secret });
    assert.equal(users.status, 200, JSON.stringify(users.body));
    assert.ok(users.body.users.some((u) => u.username === 'tokenfan'));
    assert.equal((await api('GET', '/api/tokens', { token: secret })).status, 403);
    const bot = await RpcClient.connect(secret);
    const rooms = await bot.call('rooms.list', {});
    assert.ok(Array.isArray(rooms.rooms));
    bot.close();

    // Once dismissed (or after a reload) the secret is gone from the page for good.
    await person.getByTestId('token-secret-dismiss').click();
    await expectCount(person.getByTestId('token-secret'), 0);
    await person.reload();
    await tokenRow(person, 'ci-bot').waitFor();
    assert.equal(await person.getByTestId('token-secret').count(), 0);
    assert.equal(await person.locator(`text=${secret}`).count(), 0);
    await until('last use to be listed', async () => (await tokenRow(person, 'ci-bot').getByTestId('token-row-last-used').innerText()) !== 'Never');
  });

  test('revoking a token in the page closes its sockets and the API refuses it', async () => {
    const bot = await RpcClient.connect(secret);
    const closed = new Promise((resolve) => bot.ws.once('close', (code) => resolve(code)));
    const row = tokenRow(person, 'ci-bot');
    await row.getByTestId('token-revoke').click();
    // It asks once more; Cancel keeps the token.
    await person.getByTestId('token-revoke-cancel').click();
    assert.equal((await api('GET', '/api/users', { token: secret })).status, 200);
    await row.getByTestId('token-revoke').click();
    await person.getByTestId('token-revoke-confirm').click();
    await expectCount(person.getByTestId('token-row'), 0);
    await expectText(person.getByTestId('tokens-empty'), 'No tokens yet');
    assert.equal(await closed, 4003);
    const refused = await api('GET', '/api/users', { token: secret });
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    await assert.rejects(RpcClient.connect(secret), /401/);
  });

  let hookSecret;

  test('an admin registers a webhook; a bad URL is explained and kept', async () => {
    createAdmin('hookboss', PASSWORD);
    admin = await newPage(browser);
    await logIn(admin, 'hookboss');
    await openSettings(admin);
    await admin.getByTestId('webhooks-section').waitFor();
    await expectText(admin.getByTestId('webhooks-empty'), 'No webhooks yet');
    await admin.locator('[data-testid="token-scopes"] input[data-value="publish"]').waitFor();

    // The server's words for a URL it cannot parse, next to the field, with the text kept.
    const form = admin.getByTestId('webhook-form');
    await admin.getByTestId('webhook-url').fill('http://not a host/');
    await admin.getByTestId('webhook-rooms').fill(ROOM);
    await admin.getByTestId('webhook-create').click();
    await expectText(form.getByTestId('field-error'), 'Url: is not a valid URL');
    assert.equal(await admin.getByTestId('webhook-url').inputValue(), 'http://not a host/');
    assert.equal(await admin.getByTestId('webhook-rooms').inputValue(), ROOM);

    const url = `${receiver.url}/confab`;
    await admin.getByTestId('webhook-url').fill(url);
    assert.equal(await admin.locator('[data-testid="webhook-events"] input[data-value="room.message"]').isChecked(), true);
    await admin.getByTestId('webhook-create').click();
    const box = admin.getByTestId('webhook-secret');
    await box.waitFor();
    hookSecret = await box.inputValue();
    assert.match(hookSecret, /^whsec_[A-Za-z0-9+/]+=*$/);
    const item = admin.locator(`[data-testid="webhook-item"][data-url="${url}"]`);
    await expectText(item.getByTestId('webhook-item-events'), `room.message · #${ROOM}`);
    await admin.getByTestId('webhook-secret-dismiss').click();
    await expectCount(admin.getByTestId('webhook-secret'), 0);

    const listed = await api('GET', '/api/webhooks', { token: await login('hookboss', PASSWORD) });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.map((h) => [h.url, h.events, h.rooms]), [[url, ['room.message'], [ROOM]]]);
  });

  test('a failed delivery is listed with its HTTP code and succeeds on Retry', async () => {
    receiver.failNext(1);
    const bossToken = await login('hookboss', PASSWORD);
    const poster = await RpcClient.connect(bossToken);
    await poster.call('room.join', { room: ROOM, history: 0 });
    const sent = await poster.call('room.send', { room: ROOM, text: 'hello, webhook' });
    poster.close();

    await until('the first attempt', async () => receiver.requests.length >= 1);
    const first = receiver.requests[0];
    assert.equal(first.answered, 500);
    assert.equal(first.path, '/confab');
    const body = JSON.parse(first.body);
    assert.equal(body.type, 'room.message');
    assert.equal(body.data.id, sent.id);
    assert.equal(body.data.text, 'hello, webhook');
    assert.ok(signatureValid(first, hookSecret), 'signed with the secret the page showed');

    const item = admin.locator('[data-testid="webhook-item"]').first();
    await item.getByTestId('webhook-deliveries-toggle').click();
    const row = item.getByTestId('delivery-row').first();
    await until('the failure to be listed', async () => {
      if ((await row.count()) === 0 || (await row.getAttribute('data-http')) !== '500') {
        const refresh = item.getByTestId('deliveries-refresh');
        if (!(await refresh.isDisabled())) await refresh.click();
        return false;
      }
      return true;
    });
    await expectAttr(row, 'data-status', 'pending');
    await expectAttr(row, 'data-event-id', first.headers['webhook-id']);
    await expectText(row.getByTestId('delivery-http'), '500');
    await expectText(row.getByTestId('delivery-attempts'), '1');
    await expectText(row, 'room.message');
    assert.equal(receiver.requests.length, 1, 'no automatic retry yet (the suite retries after minutes)');

    await row.getByTestId('delivery-retry').click();
    await expectAttr(row, 'data-status', 'delivered', 20_000);
    await expectText(row.getByTestId('delivery-http'), '200');
    await expectText(row.getByTestId('delivery-attempts'), '2');
    assert.equal(receiver.requests.length, 2);
    const second = receiver.requests[1];
    assert.equal(second.answered, 200);
    assert.equal(second.headers['webhook-id'], first.headers['webhook-id'], 'a retry is the same event');
    assert.ok(signatureValid(second, hookSecret));
  });

  test('deleting a webhook in the page stops its deliveries', async () => {
    const item = admin.locator('[data-testid="webhook-item"]').first();
    await item.getByTestId('webhook-delete').click();
    await admin.getByTestId('webhook-delete-confirm').click();
    await expectCount(admin.getByTestId('webhook-item'), 0);
    await expectText(admin.getByTestId('webhooks-empty'), 'No webhooks yet');
    const listed = await api('GET', '/api/webhooks', { token: await login('hookboss', PASSWORD) });
    assert.deepEqual(listed.body, []);
    // The person who is not an admin never saw any of it.
    await person.reload();
    await person.getByTestId('tokens-section').waitFor();
    assert.equal(await person.getByTestId('webhooks-section').count(), 0);
  });
});
