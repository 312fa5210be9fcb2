// The reconnection delays: full jitter under a doubling, capped ceiling, and a prompt
// jittered retry after a "server restarting" close. `random` is fixed, so these are exact.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff, DEFAULT_BACKOFF, RESTART_CLOSE_CODES } from "@confab/client";

const options = { initialDelayMs: 100, maxDelayMs: 1_000, restartJitterMs: 300 };

test("the ceiling doubles per failed attempt up to the cap", () => {
  const backoff = new Backoff(options, () => 0.999_999);
  const ceilings = Array.from({ length: 6 }, () => Math.round(backoff.next()));
  assert.deepEqual(ceilings, [100, 200, 400, 800, 1000, 1000]);
});

test("full jitter: each wait is anywhere between zero and the ceiling", () => {
  const samples = [0, 0.25, 0.5];
  let i = 0;
  const backoff = new Backoff(options, () => samples[i++ % samples.length]!);
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 50, 200]);
});

test("the first attempt after a restart close (1001 or 1012) comes within the spread, then the backoff goes on", () => {
  const backoff = new Backoff(options, () => 0.5);
  for (const code of [1001, 1012]) {
    backoff.reset();
    assert.equal(backoff.next(code), 150);
    assert.equal(backoff.next(), 100, "the second attempt is the policy's attempt 1");
  }
});

test("the defaults are the shared policy's numbers", () => {
  assert.deepEqual(DEFAULT_BACKOFF, { initialDelayMs: 500, maxDelayMs: 30_000, restartJitterMs: 5_000 });
  assert.deepEqual([...RESTART_CLOSE_CODES], [1001, 1012]);
});

test("other closes back off like failures, and reset starts over", () => {
  const backoff = new Backoff(options, () => 0.999_999);
  backoff.next(1006);
  assert.equal(Math.round(backoff.next(1013)), 200);
  backoff.reset();
  assert.equal(Math.round(backoff.next()), 100);
});

test("a long outage never overflows the ceiling", () => {
  const backoff = new Backoff(options, () => 0.999_999);
  for (let i = 0; i < 2_000; i += 1) backoff.next();
  assert.equal(Math.round(backoff.next()), 1_000);
});
