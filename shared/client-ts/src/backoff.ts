// When to try again after a connection is lost: Confab's reconnection policy, defined once in
// the shared crate (confab_shared::rpc::reconnect) and exported with its numbers as
// `Reconnect` in @confab/types: exponential backoff with full jitter (a random wait between 0
// and the current ceiling, which doubles per failed attempt), and a first attempt spread over
// a few seconds after a "server restarting" close, so a fleet of clients dropped at once by a
// restart does not come back in lockstep.

import { Reconnect } from "@confab/types";

export interface BackoffOptions {
  /** The ceiling of the first wait (default 500 ms); it doubles per failed attempt. */
  initialDelayMs: number;
  /** The largest ceiling (default 30 s). */
  maxDelayMs: number;
  /** After a "server restarting" close (1001, 1012) the first attempt comes within this (default 5 s). */
  restartJitterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: Reconnect.baseMs,
  maxDelayMs: Reconnect.capMs,
  restartJitterMs: Reconnect.goingAwaySpreadMs,
};

/** Close codes that mean "this server is going away; another (or the same, restarted) one is coming". */
export const RESTART_CLOSE_CODES: ReadonlySet<number> = new Set(Reconnect.spreadCloseCodes);

export class Backoff {
  /** Attempts since the last successful connection (0: the first after a drop). */
  private attempt = 0;
  private readonly options: BackoffOptions;

  /** `random` returns a number in [0, 1); tests pass a fixed one. */
  constructor(
    options: Partial<BackoffOptions> = {},
    private readonly random: () => number = Math.random,
  ) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** The wait (ms) before the next attempt; `closeCode` is the close that lost the connection, if one did. */
  next(closeCode?: number): number {
    const attempt = this.attempt;
    // Past the cap the exponent no longer matters; keeping it bounded keeps 2 ** n finite.
    this.attempt = Math.min(this.attempt + 1, 32);
    if (attempt === 0 && closeCode !== undefined && RESTART_CLOSE_CODES.has(closeCode)) {
      return this.random() * this.options.restartJitterMs;
    }
    const ceiling = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** attempt);
    return this.random() * ceiling;
  }

  /** A connection succeeded: the next loss starts from the first ceiling again. */
  reset(): void {
    this.attempt = 0;
  }
}
