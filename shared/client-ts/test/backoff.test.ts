// The reconnection delays: full jitter under a doubling, capped ceiling, and a prompt
// jittered retry after a "server restarting" close. `random` is fixed, so these are exact.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff } from "@confab/client";

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

test("a restart close (1001 or 1012) retries within the restart jitter and starts the backoff over", () => {
  const backoff = new Backoff(options, () => 0.5);
  for (let i = 0; i < 5; i += 1) backoff.next();
  assert.equal(backoff.next(1001), 150);
  assert.equal(backoff.next(), 50, "after a restart close the next failure waits as if it were the first");
  assert.equal(backoff.next(1012), 150);
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
