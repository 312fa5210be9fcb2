// The web app on a phone: Lighthouse (mobile defaults: simulated slow 4G, 4x slower CPU)
// with Debian's Chromium against /login and a room page of a release server, plus the
// facts behind a fast first load checked over plain HTTP.
//
// Only deterministic facts are asserted: the compressed sizes, the headers, the cache
// lifetimes, the identity fallback, the bytes a first load transfers, that the app's start
// ran to its end. Scores and timings depend on the machine and are reported (lighthouse.md
// and lighthouse.json in CONFAB_LIGHTHOUSE_OUT, Lighthouse's own HTML reports in
// CONFAB_LIGHTHOUSE_HTML), never asserted: Lighthouse's simulation multiplies the main-thread
// time it observes by 4, so on a shared 2-core machine the same build scores from the low
// 70s to the high 90s on the room page depending on what else runs. Each page is measured
// CONFAB_LIGHTHOUSE_RUNS times (default 3) and the run with the median Performance score is
// reported, as Lighthouse's documentation advises for variance.
//
// Environment (set by e2e/suites/15-lighthouse.sh): CONFAB_URL, CONFAB_LIGHTHOUSE_OUT,
// CONFAB_LIGHTHOUSE_HTML, CHROME_PATH, CONFAB_LIGHTHOUSE_RUNS.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';

import { renderMarkdown } from '../lib/report.mjs';

const BASE = required('CONFAB_URL');
const OUT = required('CONFAB_LIGHTHOUSE_OUT');
const HTML_OUT = required('CONFAB_LIGHTHOUSE_HTML');

/** The first-load targets of the web app (KB = 1000 bytes). */
const MAX_WASM_BROTLI = 450_000;
const MAX_FIRST_LOAD = 500_000;
const YEAR = 'public, max-age=31536000, immutable';
const RUNS = Number(process.env.CONFAB_LIGHTHOUSE_RUNS ?? 3);

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this through e2e/suites/15-lighthouse.sh`);
  return value;
}

/** A GET with exactly these headers and no decompression: what the server really sends. */
function rawGet(pathname, headers = {}) {
  return new Promise((resolve, reject) => {
    const request = http.get(new URL(pathname, BASE), { headers }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.setTimeout(15_000, () => request.destroy(new Error(`GET ${pathname} timed out`)));
    request.on('error', reject);
  });
}

async function api(method, pathname, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(new URL(pathname, BASE), { method, headers, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** The asset URLs index.html names (content-hashed by frontend/build.sh). */
function assetsOf(html) {
  const find = (pattern, what) => {
    const match = html.match(pattern);
    assert.ok(match, `index.html names no ${what}`);
    return match[0];
  };
  return {
    wasm: find(/\/assets\/confab_frontend_bg-[0-9a-f]{16}\.wasm/, 'hashed WASM'),
    js: find(/\/assets\/confab_frontend-[0-9a-f]{16}\.js/, 'hashed JS'),
    css: find(/\/assets\/style-[0-9a-f]{16}\.css/, 'hashed CSS'),
  };
}

const ROOM = 'lobby';
let assets;
/** Lighthouse results by page name. */
const results = {};

describe('the web app on a phone', { concurrency: false }, () => {
  before(async () => {
    const index = await rawGet('/login');
    assets = assetsOf(index.body.toString('utf8'));
    // A room to look at, as an anonymous visitor would.
    await api('POST', '/api/auth/signup', { username: 'lighthouse', password: 'correct horse battery' });
    const pair = await api('POST', '/api/auth/login', { username: 'lighthouse', password: 'correct horse battery' });
    await api('POST', '/api/rooms', { name: ROOM, admin_only: false }, pair.access_token);
  });

  test('the WASM is sent as brotli, at most 450 KB', async () => {
    const response = await rawGet(assets.wasm, { 'accept-encoding': 'gzip, deflate, br, zstd' });
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-encoding'], 'br');
    assert.equal(response.headers['content-type'], 'application/wasm');
    assert.ok(response.body.length <= MAX_WASM_BROTLI, `${response.body.length} bytes of brotli`);
    results.wasmBrotli = response.body.length;
  });

  test('hashed assets are cached for a year, in every encoding, and vary on it', async () => {
    for (const url of Object.values(assets)) {
      for (const [accept, encoding] of [['br, gzip', 'br'], ['gzip', 'gzip'], [undefined, undefined]]) {
        const response = await rawGet(url, accept ? { 'accept-encoding': accept } : {});
        const what = `${url} with Accept-Encoding ${accept}`;
        assert.equal(response.status, 200, what);
        assert.equal(response.headers['content-encoding'], encoding, what);
        assert.equal(response.headers['cache-control'], YEAR, what);
        assert.match(response.headers.vary ?? '', /accept-encoding/i, what);
      }
    }
  });

  test('a client that asks for no encoding gets the files as they are', async () => {
    const plain = await rawGet(assets.wasm);
    const brotli = await rawGet(assets.wasm, { 'accept-encoding': 'br' });
    assert.equal(plain.headers['content-encoding'], undefined);
    // The WebAssembly magic number: \0asm.
    assert.deepEqual([...plain.body.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]);
    assert.ok(brotli.body.length * 3 < plain.body.length, `${brotli.body.length} of ${plain.body.length}`);
    results.wasmRaw = plain.body.length;
    results.wasmGzip = (await rawGet(assets.wasm, { 'accept-encoding': 'gzip' })).body.length;
  });

  test('index.html and the client-side routes are revalidated on every load', async () => {
    for (const pathname of ['/', '/login', `/rooms/${ROOM}`, '/dm/someone']) {
      const response = await rawGet(pathname, { 'accept-encoding': 'br, gzip' });
      assert.equal(response.status, 200, pathname);
      assert.equal(response.headers['cache-control'], 'no-cache', pathname);
      assert.equal(response.headers['content-encoding'], 'br', pathname);
      assert.match(response.headers['content-type'], /^text\/html/, pathname);
    }
  });

  test('index.html fetches the WASM and its glue from the start, before any script runs', async () => {
    const html = (await rawGet('/login')).body.toString('utf8');
    const head = html.slice(0, html.indexOf('</head>'));
    assert.match(head, new RegExp(`<link rel="modulepreload" href="${assets.js}"`));
    assert.match(head, new RegExp(`<link rel="preload" href="${assets.wasm}" as="fetch" type="application/wasm" crossorigin`));
    assert.doesNotMatch(head, /<script[^>]*\ssrc=/, 'no script file blocks the first paint');
  });

  test(`Lighthouse (mobile, median of ${RUNS}) on /login and a room page; the first load is at most 500 KB`, async () => {
    const chrome = await chromeLauncher.launch({
      chromePath: process.env.CHROME_PATH,
      // Root in CI and containers: no sandbox. Headless, and nothing of a user's profile.
      chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    results.environment = { loadAverageBefore: loadAverage() };
    try {
      for (const [name, pathname] of [['login', '/login'], ['room', `/rooms/${ROOM}`]]) {
        const runs = [];
        for (let run = 0; run < RUNS; run++) {
          const runner = await lighthouse(new URL(pathname, BASE).href, {
            port: chrome.port,
            output: ['json', 'html'],
            logLevel: 'error',
            onlyCategories: ['performance', 'accessibility', 'best-practices'],
          });
          const lhr = runner.lhr;
          assert.equal(lhr.runtimeError, undefined, `${name}: ${lhr.runtimeError?.message}`);
          // The boot (index.html) marks its end once the app has taken over from the shell.
          const marks = (lhr.audits['user-timings']?.details?.items ?? []).map((item) => item.name);
          assert.ok(marks.includes('confab:ready'), `${name}: the app did not finish starting (marks: ${marks.join(', ')})`);
          runs.push({ summary: summarize(lhr), html: runner.report[1] });
        }
        runs.sort((a, b) => a.summary.scores.performance - b.summary.scores.performance);
        const median = runs[Math.floor(runs.length / 2)];
        await mkdir(HTML_OUT, { recursive: true });
        await writeFile(path.join(HTML_OUT, `${name}.report.html`), median.html);
        results[name] = { ...median.summary, performanceRuns: runs.map((r) => r.summary.scores.performance) };
      }
    } finally {
      await chrome.kill();
    }
    results.environment.loadAverageAfter = loadAverage();
    for (const name of ['login', 'room']) {
      const bytes = results[name].transferBytes;
      assert.ok(bytes <= MAX_FIRST_LOAD, `${name}: the first load transfers ${bytes} bytes`);
    }
  });

  after(async () => {
    if (!results.login) return;
    await mkdir(OUT, { recursive: true });
    const report = {
      ...results,
      assets,
      environment: { ...results.environment, cpus: os.cpus().length },
    };
    await writeFile(path.join(OUT, 'lighthouse.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(path.join(OUT, 'lighthouse.md'), renderMarkdown(report));
    console.log(`lighthouse: report in ${OUT}/lighthouse.md`);
  });
});

/** The 1, 5 and 15 minute load averages. */
function loadAverage() {
  return os.loadavg().map((l) => Number(l.toFixed(2)));
}

/** The numbers worth keeping from one Lighthouse result. */
function summarize(lhr) {
  const audit = (id) => lhr.audits[id]?.numericValue;
  const requests = lhr.audits['network-requests']?.details?.items ?? [];
  return {
    url: new URL(lhr.finalDisplayedUrl).pathname,
    lighthouse: lhr.lighthouseVersion,
    chrome: lhr.environment?.hostUserAgent?.match(/Chrome\/[\d.]+/)?.[0],
    scores: Object.fromEntries(Object.entries(lhr.categories).map(([id, c]) => [id, Math.round(c.score * 100)])),
    metrics: {
      fcpMs: audit('first-contentful-paint'),
      lcpMs: audit('largest-contentful-paint'),
      ttiMs: audit('interactive'),
      tbtMs: audit('total-blocking-time'),
      speedIndexMs: audit('speed-index'),
      cls: audit('cumulative-layout-shift'),
    },
    transferBytes: audit('total-byte-weight'),
    requests: requests.map((r) => ({
      url: new URL(r.url).pathname,
      transferBytes: r.transferSize,
      resourceBytes: r.resourceSize,
    })),
    // The simulated main-thread tasks over 50 ms (what Total Blocking Time adds up).
    longTasksMs: (lhr.audits['long-tasks']?.details?.items ?? []).map((t) => Math.round(t.duration)),
    userTimings: Object.fromEntries(
      (lhr.audits['user-timings']?.details?.items ?? []).map((t) => [t.name, Math.round(t.startTime + (t.duration ?? 0))]),
    ),
    failedAudits: Object.values(lhr.audits)
      .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode === 'binary')
      .map((a) => a.id),
  };
}
