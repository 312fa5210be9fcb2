// When to try again after a connection is lost: exponential backoff with full jitter (a
// random wait between 0 and the current ceiling, which doubles per failed attempt), so a
// fleet of clients dropped at once by a restart does not come back in lockstep.

import { CloseCodes } from "@confab/types";

export interface BackoffOptions {
  /** The ceiling of the first wait (default 500 ms); it doubles per failed attempt. */
  initialDelayMs: number;
  /** The largest ceiling (default 30 s). */
  maxDelayMs: number;
  /** After a "server restarting" close (1001, 1012) the first attempt comes within this (default 1 s). */
  restartJitterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000, restartJitterMs: 1_000 };

/** 1012 (Service Restart, RFC 6455 registry) is not sent by Confab today, but by proxies in front of it. */
const SERVICE_RESTART = 1012;

/** Close codes that mean "this server is going away; another (or the same, restarted) one is coming". */
export const RESTART_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCodes.GoingAway, SERVICE_RESTART]);

export class Backoff {
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
    if (closeCode !== undefined && RESTART_CLOSE_CODES.has(closeCode)) {
      // A restart is planned: a prompt retry will likely find the new process, and the
      // backoff starts over if it does not.
      this.attempt = 0;
      return this.random() * this.options.restartJitterMs;
    }
    const ceiling = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** this.attempt);
    // Past the cap the exponent no longer matters; keeping it bounded keeps 2 ** n finite.
    this.attempt = Math.min(this.attempt + 1, 32);
    return this.random() * ceiling;
  }

  /** A connection succeeded: the next loss starts from the first ceiling again. */
  reset(): void {
    this.attempt = 0;
  }
}
