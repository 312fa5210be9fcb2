// "Log in with" against a real OpenID Connect provider (oidc-provider, e2e/oidc/provider.mjs)
// on loopback, with RS256 keys made here: the web app's login through the provider's own
// login page in headless Chromium; the provider's ID tokens verified by Confab through
// discovery and JWKS, as REST bearers and at the socket upgrade; a key rotation (the provider
// restarted signing with a new key, the old one still published); and the provider stopped
// (Confab's cached keys still verify).
//
// Environment (set by e2e/suites/50-oidc.sh): CONFAB_URL (a server trusting the provider as
// the issuer "local", with login = true), OIDC_PORT (the provider's port), OIDC_DIR (a
// scratch directory for the keys and the provider's pid).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const CONFAB = required('CONFAB_URL');
const PORT = Number(required('OIDC_PORT'));
const DIR = required('OIDC_DIR');
const ISSUER = `http://127.0.0.1:${PORT}`;
const CLIENT = 'confab-web';
// Where the test's own authorization requests come back (the provider itself, which knows
// nothing of the path): the code is read from the address and exchanged by the test.
const CAPTURE = `${ISSUER}/back-to-the-test`;
// A guard against a hang, not a measurement: wide enough for a loaded 2-core machine.
const TIMEOUT = 30_000;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this through e2e/suites/50-oidc.sh`);
  return value;
}

async function within(what, promise, ms = TIMEOUT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

function claimsOf(jwt) {
  const [header, payload] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
  return { header, payload };
}

// ----- the provider ---------------------------------------------------------------

/** A new RS256 signing key as a private JWK. */
function newKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

let providerProcess = null;

/** Starts the provider signing with keys[0] and publishing all of them. */
async function startProvider(keys) {
  const keysFile = path.join(DIR, 'jwks.json');
  writeFileSync(keysFile, JSON.stringify({ keys }));
  const log = openSync(path.join(DIR, 'provider.log'), 'a');
  const child = spawn(process.execPath, ['provider.mjs'], {
    env: {
      ...process.env,
      OIDC_PORT: String(PORT),
      OIDC_KEYS: keysFile,
      OIDC_REDIRECT_URIS: `${CONFAB}/login/callback ${CAPTURE}`,
    },
    stdio: ['ignore', 'pipe', log],
  });
  writeFileSync(path.join(DIR, 'provider.pid'), String(child.pid));
  providerProcess = child;
  await within(
    'the provider to listen',
    new Promise((resolve, reject) => {
      child.stdout.on('data', (chunk) => String(chunk).includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`the provider exited (${code}); see ${DIR}/provider.log`)));
    }),
  );
}

async function stopProvider() {
  const child = providerProcess;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await within('the provider to stop', exited).catch(() => child.kill('SIGKILL'));
  providerProcess = null;
}

// ----- the provider's pages -------------------------------------------------------

/**
 * Goes through the provider's own pages as a person would: its login form (any login and
 * password), then its consent form, each only if the provider shows it; resolves once the
 * browser is sent back (`back` settles).
 */
async function passProvider(page, login, back) {
  try {
    await throughProvider(page, login, back);
  } catch (err) {
    const text = await page.locator('body').innerText({ timeout: 1000 }).catch(() => '');
    err.message += `; the page was ${page.url()}: ${text.slice(0, 400)}`;
    throw err;
  }
}

async function throughProvider(page, login, back) {
  const shown = (selector) => page.waitForSelector(selector, { state: 'attached', timeout: TIMEOUT });
  const first = await within(
    "the provider's page or the way back",
    Promise.race([back.then(() => 'back'), shown('input[name=prompt]').then((el) => el.getAttribute('value'))]),
  );
  if (first === 'login') {
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'any password will do');
    await page.click('button[type=submit]');
  }
  if (first !== 'back') {
    const second = await within(
      "the provider's consent page or the way back",
      Promise.race([back.then(() => 'back'), shown('input[name=prompt][value=consent]').then(() => 'consent')]),
    );
    if (second === 'consent') await page.click('button[type=submit]');
  }
  await within('the way back from the provider', back);
}

/** An ID token for `login`, by the authorization code flow with PKCE, as any client gets one. */
async function idToken(page, login) {
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  // The provider's 404 for this path is of no matter: the code is in the address.
  const back = page
    .waitForURL((url) => url.href.startsWith(CAPTURE) && url.searchParams.get('state') === state, { timeout: TIMEOUT })
    .then(() => page.url());
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT,
    redirect_uri: CAPTURE,
    scope: 'openid profile',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  await page.goto(`${ISSUER}/auth?${query}`);
  await passProvider(page, login, back);
  const url = new URL(await back);
  assert.equal(url.searchParams.get('state'), state, `the provider's answer: ${url}`);
  const response = await fetch(`${ISSUER}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: url.searchParams.get('code') ?? '',
      redirect_uri: CAPTURE,
      client_id: CLIENT,
      code_verifier: verifier,
    }),
    signal: AbortSignal.timeout(TIMEOUT),
  });
  const body = await response.json();
  assert.ok(body.id_token, `the token endpoint answered ${response.status} ${JSON.stringify(body)}`);
  assert.equal(claimsOf(body.id_token).payload.nonce, nonce);
  return body.id_token;
}

// ----- Confab ---------------------------------------------------------------------

async function me(token) {
  const response = await fetch(`${CONFAB}/api/me`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(TIMEOUT),
  });
  const body = await response.json();
  assert.equal(response.status, 200, `GET /api/me: ${JSON.stringify(body)}`);
  return body;
}

/** Opens a socket with `token` at the upgrade and joins a room with it. */
async function joinWith(token, room) {
  const ws = new WebSocket(`${CONFAB.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${token}` } });
  try {
    const answer = await within(
      `the socket's answer to room.join ${room}`,
      new Promise((resolve, reject) => {
        ws.once('unexpected-response', (_req, res) => reject(new Error(`the upgrade was refused: ${res.statusCode}`)));
        ws.once('error', reject);
        ws.once('open', () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'room.join', params: { room } })));
        ws.on('message', (data) => {
          const frame = JSON.parse(String(data));
          if (frame.id === 1) resolve(frame);
        });
      }),
    );
    assert.ok(answer.result, `room.join: ${JSON.stringify(answer)}`);
    return answer.result;
  } finally {
    ws.close();
  }
}

async function providers() {
  const response = await fetch(`${CONFAB}/api/auth/providers`, { signal: AbortSignal.timeout(TIMEOUT) });
  assert.equal(response.status, 200);
  return response.json();
}

// ----- the scenario ---------------------------------------------------------------

let browser = null;
after(async () => {
  await browser?.close().catch(() => {});
  await stopProvider();
});

test('log in with a real OpenID Connect provider; its keys rotate; it stops', async (t) => {
  const first = newKey(`first-${b64url(randomBytes(6))}`);
  await startProvider([first]);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);

  await t.test("the web app's \"Log in with\" goes through the provider's login page and ends logged in", async () => {
    const offered = await providers();
    assert.deepEqual(offered.map((p) => [p.name, p.label, p.client_id]), [['local', 'Local IdP', CLIENT]]);
    await page.goto(`${CONFAB}/login`);
    const button = page.getByTestId('oidc-login-local');
    assert.equal((await button.innerText({ timeout: TIMEOUT })).trim(), 'Log in with Local IdP');
    await button.click();
    // The provider's real login page, then its consent page, then back to the app.
    await page.waitForURL((url) => url.href.startsWith(ISSUER), { timeout: TIMEOUT });
    const back = page.waitForURL((url) => url.href.startsWith(CONFAB), { timeout: TIMEOUT });
    await passProvider(page, 'oidc_alice', back);
    await page.getByTestId('current-user').filter({ hasText: 'oidc_alice' }).waitFor({ timeout: TIMEOUT });
    assert.ok(!page.url().includes('/login/callback'), `left the callback: ${page.url()}`);
    assert.ok(!page.url().includes('code='), `the code is not left in the address: ${page.url()}`);
    // A Confab session: it survives a reload (refreshed through the cookie as after a password login).
    await page.reload();
    await page.getByTestId('current-user').filter({ hasText: 'oidc_alice' }).waitFor({ timeout: TIMEOUT });
  });

  let oldToken;
  await t.test('RS256 ID tokens verify through discovery and JWKS, on REST and at the socket upgrade', async () => {
    oldToken = await idToken(page, 'oidc_alice');
    assert.equal(claimsOf(oldToken).header.alg, 'RS256');
    assert.equal(claimsOf(oldToken).header.kid, first.kid);
    assert.equal((await me(oldToken)).username, 'oidc_alice', 'the same account as the web login');
    const joined = await joinWith(oldToken, 'oidc-e2e');
    assert.ok(joined.online.includes('oidc_alice'), JSON.stringify(joined.online));
  });

  const second = newKey(`second-${b64url(randomBytes(6))}`);
  let newToken;
  await t.test('after a key rotation, new tokens of the new key verify and old ones keep working', async () => {
    await stopProvider();
    await startProvider([second, first]);
    newToken = await idToken(page, 'oidc_bob');
    assert.equal(claimsOf(newToken).header.kid, second.kid, 'the provider signs with the new key');
    assert.equal((await me(newToken)).username, 'oidc_bob');
    await joinWith(newToken, 'oidc-e2e');
    assert.equal((await me(oldToken)).username, 'oidc_alice');
    await joinWith(oldToken, 'oidc-e2e');
  });

  await t.test("with the provider stopped, Confab's cached keys still verify", async () => {
    await stopProvider();
    const refused = await fetch(`${ISSUER}/jwks`).then(() => 'answered', () => 'refused');
    assert.equal(refused, 'refused', 'the provider is down');
    assert.equal((await me(newToken)).username, 'oidc_bob');
    assert.equal((await me(oldToken)).username, 'oidc_alice');
    await joinWith(newToken, 'oidc-e2e');
    // The login page still offers it (the endpoints were read before).
    assert.equal((await providers()).length, 1);
  });

  await context.close();
});
