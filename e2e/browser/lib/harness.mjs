// Helpers for the browser suite: the server under test (including restarting it on the
// same port and data dir), Chromium, REST and WebSocket clients, and polling assertions
// on what the page shows.
//
// Environment (set by e2e/suites/10-browser.sh): CONFAB_URL, CONFAB_PID, CONFAB_DATA,
// CONFAB_BIN, optional CONFAB_STATIC_DIR and CONFAB_SCREENSHOTS (a directory to save PNGs to).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

export const URL_BASE = required('CONFAB_URL');
const DATA_DIR = required('CONFAB_DATA');
const BIN = required('CONFAB_BIN');
// A test file that restarted the server left the new pid beside the data (see startServer);
// each file runs in a process of its own, so the next one starts from there.
let serverPid = Number(existsSync(path.join(DATA_DIR, 'restarted.pid')) ? readFileSync(path.join(DATA_DIR, 'restarted.pid'), 'utf8') : required('CONFAB_PID'));

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this through e2e/suites/10-browser.sh`);
  return value;
}

// How long a step may wait for the page: a guard against a hang, not a measurement, so wide
// enough for a 2-core machine busy with the other suites.
export const TIMEOUT = 30_000;

// ----- the server -----------------------------------------------------------------

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // The first server is the suite script's child, which cannot reap it while node runs:
  // an exited server stays a zombie until then.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function health() {
  try {
    const response = await fetch(`${URL_BASE}/api/health`);
    return response.ok;
  } catch {
    return false;
  }
}

/** Stops the server (SIGTERM, as in a deploy) and waits until it is gone. */
export async function stopServer() {
  process.kill(serverPid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(serverPid); i++) await sleep(100);
  if (alive(serverPid)) process.kill(serverPid, 'SIGKILL');
  for (let i = 0; i < 50 && alive(serverPid); i++) await sleep(100);
  if (alive(serverPid)) throw new Error(`server ${serverPid} did not stop`);
}

/** Starts the server again on the same port and data dir (so the same JWT secret). */
export async function startServer() {
  const { port } = new URL(URL_BASE);
  // As e2e/lib/confab.sh starts it: every person signs up from 127.0.0.1, so no sign-up limit.
  const env = {
    ...process.env,
    CONFAB_BIND: `127.0.0.1:${port}`,
    CONFAB_DATA_DIR: DATA_DIR,
    RUST_LOG: process.env.RUST_LOG ?? 'info',
    CONFAB_SIGNUPS_PER_IP: process.env.CONFAB_SIGNUPS_PER_IP ?? '0',
  };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const log = openSync(path.join(DATA_DIR, 'server.log'), 'a');
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', log, log], detached: true });
  child.unref();
  serverPid = child.pid;
  // The suite's cleanup stops whichever server runs last.
  writeFileSync(path.join(DATA_DIR, 'restarted.pid'), String(serverPid));
  for (let i = 0; i < 150; i++) {
    if (await health()) return;
    if (!alive(serverPid)) throw new Error('the restarted server exited; see server.log');
    await sleep(200);
  }
  throw new Error('the restarted server did not become healthy');
}

/** `confab user create <name> --admin`, password on stdin, against the same data dir. */
export function createAdmin(username, password) {
  const env = { ...process.env, CONFAB_DATA_DIR: DATA_DIR };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const result = spawnSync(BIN, ['user', 'create', username, '--admin'], { env, input: `${password}\n`, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`confab user create failed: ${result.stderr}`);
}

// ----- REST and a programmatic WebSocket client ---------------------------------------

export async function api(method, route, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${URL_BASE}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: response.status, body: json };
}

export async function signupAndLogin(username, password) {
  const signup = await api('POST', '/api/auth/signup', { body: { username, password } });
  if (signup.status !== 201) throw new Error(`signup ${username}: ${signup.status} ${JSON.stringify(signup.body)}`);
  return login(username, password);
}

export async function login(username, password) {
  const response = await api('POST', '/api/auth/login', { body: { username, password } });
  if (response.status !== 200) throw new Error(`login ${username}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body.access_token;
}

/** A JSON-RPC client over `ws` with a bearer header, like a third-party program. */
export class RpcClient {
  static async connect(token) {
    const ws = new WebSocket(`${URL_BASE.replace(/^http/, 'ws')}/ws`, 'confab.v1', {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const client = new RpcClient(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        // Listening for this makes ending the refused request our job; left open, it
        // would keep the test process alive.
        ws.terminate();
        reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
    });
    return client;
  }

  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();
    this.notifications = [];
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      for (const message of Array.isArray(frame) ? frame : [frame]) {
        if (message.id !== undefined && this.pending.has(message.id)) {
          const { resolve, reject } = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (message.error) reject(new Error(`${message.error.code} ${message.error.message}`));
          else resolve(message.result);
        } else if (message.method) {
          this.notifications.push(message);
        }
      }
    });
  }

  call(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  close() {
    this.ws.close();
  }
}

// ----- the browser --------------------------------------------------------------------

export async function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Every Content-Security-Policy violation any page reported, as text. The server sends its
 * policy on every page and the suite runs with it on: each test file ends with
 * `assertNoCspViolations()`, so a change that the policy would break in production (an
 * inline script without its hash, a style attribute, a request to another host) fails here.
 */
export const cspViolations = [];

/** Fails when a page of the run reported a Content-Security-Policy violation. */
export function assertNoCspViolations() {
  if (cspViolations.length > 0) {
    throw new Error(`Content-Security-Policy violations:\n  ${[...new Set(cspViolations)].join('\n  ')}`);
  }
}

/** A fresh, isolated browser profile (its own localStorage, so its own session). */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ baseURL: URL_BASE, acceptDownloads: true, viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // The page's own report of each violation (the DevTools protocol injects this listener,
  // which the policy does not govern), and the console's, which also names blocked evals.
  page.cspViolations = [];
  const record = (text) => {
    if (!page.expectCspViolations) console.error(`[csp violation] ${text}`);
    page.cspViolations.push(text);
    if (!page.expectCspViolations) cspViolations.push(text);
  };
  await page.exposeFunction('__confabCspViolation', (text) => record(text));
  await page.addInitScript(() => {
    addEventListener('securitypolicyviolation', (event) => {
      globalThis.__confabCspViolation?.(
        `${location.pathname}: ${event.effectiveDirective} blocked ${event.blockedURI || 'inline'} (${event.sourceFile}:${event.lineNumber})`,
      );
    });
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content.Security.Policy/i.test(msg.text())) record(`console: ${msg.text()}`);
  });
  // Every WebSocket the page opens: a tab must hold one at a time and only replace it
  // when the connection really drops.
  page.sockets = [];
  page.on('websocket', (ws) => page.sockets.push(ws));
  // Every URL the page loads: everything must come from the server itself (no CDN).
  page.requests = [];
  page.on('request', (request) => page.requests.push(request.url()));
  page.on('pageerror', (err) => console.error(`[page error] ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`[console] ${msg.text()}`);
  });
  return page;
}

const SHOTS = process.env.CONFAB_SCREENSHOTS;

/** Saves a PNG of the page under $CONFAB_SCREENSHOTS when that is set. */
export async function screenshot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  // Let transitions and fonts settle.
  await sleep(300);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

// ----- polling assertions ---------------------------------------------------------------

/** Polls `probe` until it returns a truthy value; fails with `what` and the last value. */
export async function until(what, probe, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(100);
  }
}

/** Waits until one of the elements the locator matches has a text containing `text`. */
export async function expectText(locator, text, timeout) {
  let seen = [];
  await until(
    `text "${text}"`,
    async () => {
      seen = await locator.allInnerTexts().catch(() => []);
      return seen.some((t) => t.includes(text));
    },
    timeout,
  ).catch((err) => {
    throw new Error(`${err.message}; saw ${JSON.stringify(seen)}`);
  });
}

/** Waits until the locator matches exactly `n` elements. */
export async function expectCount(locator, n, timeout) {
  let count = -1;
  await until(`${n} elements`, async () => (count = await locator.count()) === n, timeout).catch((err) => {
    throw new Error(`${err.message}; last count: ${count}`);
  });
}

/** Waits until an attribute has a value. */
export async function expectAttr(locator, name, value, timeout) {
  let seen;
  await until(`${name}="${value}"`, async () => (seen = await locator.first().getAttribute(name, { timeout: 1000 })) === value, timeout).catch(
    (err) => {
      throw new Error(`${err.message}; last value: ${seen}`);
    },
  );
}

export { sleep };
