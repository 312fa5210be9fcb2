// What the browser enforces for the SPA: the Content-Security-Policy is sent and really
// blocks what it should (while the app runs under it without a single violation), the
// login page only follows `next=` to pages of this site, and the refresh token is a cookie
// that page scripts cannot read.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { PASSWORD, logIn, signUp } from '../lib/actions.mjs';
import { URL_BASE, assertNoCspViolations, expectText, launchBrowser, newPage, until } from '../lib/harness.mjs';

let browser;

describe('browser security', { concurrency: false }, () => {
  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    assertNoCspViolations();
  });

  test('every page is sent with the security headers', async () => {
    for (const path of ['/', '/login', '/rooms/lobby', '/api/docs', '/api/docs/protocol', '/api/health']) {
      const response = await fetch(`${URL_BASE}${path}`);
      const csp = response.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/, `${path}: ${csp}`);
      assert.match(csp, /default-src '(self|none)'/, `${path}: ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|'unsafe-eval'/, `${path}: ${csp}`);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', path);
    }
    const app = (await fetch(`${URL_BASE}/`)).headers.get('content-security-policy');
    assert.match(app, /script-src 'self' 'wasm-unsafe-eval'( 'sha256-[A-Za-z0-9+/=]+')+;/, app);
    assert.match(app, /object-src 'none'/);
    assert.match(app, /base-uri 'none'/);
  });

  test('the policy blocks a script injected into the running app', async () => {
    const page = await newPage(browser);
    await page.goto('/login');
    await page.getByTestId('login-form').waitFor();
    // The violation this provokes is the point: it must not fail the run.
    page.expectCspViolations = true;
    const ran = await page.evaluate(async () => {
      const script = document.createElement('script');
      script.textContent = 'window.__injected = true';
      document.body.append(script);
      const img = document.createElement('img');
      img.src = 'https://evil.example/pixel.png';
      document.body.append(img);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return window.__injected === true;
    });
    assert.equal(ran, false, 'an inline script without its hash must not run');
    await until('the violations are reported', async () => page.cspViolations.length >= 2);
    assert.ok(page.cspViolations.some((v) => v.includes('script-src')), page.cspViolations.join('\n'));
    assert.ok(page.cspViolations.some((v) => v.includes('img-src') && v.includes('evil.example')), page.cspViolations.join('\n'));
    await page.context().close();
  });

  test('the API documentation renders under its policy', async () => {
    const page = await newPage(browser);
    await page.goto('/api/docs');
    // Swagger UI (vendored) fetched the OpenAPI document and drew its operations.
    await page.locator('.swagger-ui .opblock').first().waitFor();
    await page.goto('/api/docs/protocol');
    await expectText(page.locator('h1'), 'Confab WebSocket protocol reference');
    assert.deepEqual(page.cspViolations, []);
    await page.context().close();
  });

  test('after logging in, next= leads only to pages of this site', async () => {
    const page = await newPage(browser);
    await signUp(page, 'nextuser');
    await page.getByTestId('logout-button').click();
    await page.getByTestId('login-link').waitFor();
    const origin = new URL(URL_BASE).origin;
    // Backslash, tab, newline and doubled slashes all read as `//evil.example` to a browser.
    for (const next of ['/%5Cevil.example', '/%09/evil.example', '/%0A/evil.example', '//evil.example', '/%2F/evil.example', 'https://evil.example/']) {
      await page.goto(`/login?next=${next}`);
      await page.getByTestId('login-username').fill('nextuser');
      await page.getByTestId('login-password').fill(PASSWORD);
      await page.getByTestId('login-submit').click();
      await until(`the app leaves the login page (next=${next})`, async () => new URL(page.url()).pathname !== '/login');
      const landed = new URL(page.url());
      assert.equal(landed.origin, origin, `next=${next} left the site: ${page.url()}`);
      assert.equal(landed.pathname, '/rooms', `next=${next}`);
      await expectText(page.getByTestId('current-user'), 'nextuser');
      await page.getByTestId('logout-button').click();
      await page.getByTestId('login-link').waitFor();
    }
    // A path of this site is followed.
    await page.goto('/login?next=/rooms/welcome');
    await logInHere(page, 'nextuser');
    await until('the room named by next= opens', async () => new URL(page.url()).pathname === '/rooms/welcome');
    await page.context().close();
  });

  test('the refresh token is an HttpOnly cookie, and a refresh works without any script seeing it', async () => {
    const page = await newPage(browser);
    await logIn(page, 'nextuser');
    const cookies = await page.context().cookies();
    const cookie = cookies.find((c) => c.name === 'confab_refresh');
    assert.ok(cookie, JSON.stringify(cookies));
    assert.deepEqual([cookie.httpOnly, cookie.sameSite, cookie.path], [true, 'Strict', '/api/auth/session']);
    const seen = await page.evaluate(async () => {
      const refreshed = await fetch('/api/auth/session/refresh', { method: 'POST', headers: { 'Confab-CSRF': '1' } });
      const body = await refreshed.json();
      // Without the header, as a cross-site form would send it: refused.
      const forged = await fetch('/api/auth/session/refresh', { method: 'POST' });
      return { status: refreshed.status, keys: Object.keys(body), cookie: document.cookie, storage: JSON.stringify(localStorage), forged: forged.status };
    });
    assert.equal(seen.status, 200);
    assert.ok(!seen.keys.includes('refresh_token') && seen.keys.includes('access_token'), seen.keys.join());
    assert.ok(!seen.cookie.includes('confab_refresh'), seen.cookie);
    assert.ok(!seen.storage.includes('refresh_token'), seen.storage);
    assert.equal(seen.forged, 403);
    await page.context().close();
  });
});

/** Fills the login form on the current page and submits it. */
async function logInHere(page, username) {
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(PASSWORD);
  await page.getByTestId('login-submit').click();
}
