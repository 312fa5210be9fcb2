// How a client proves who it is on every (re)connect: a fixed bearer token (an API token
// `cfb_…`, or an access token the application manages), a login it renews by itself, or
// nothing (anonymous, read-only).

import type { Credentials, TokenPair, User } from "@confab/types";

import { AuthFailed, HttpError } from "./errors.js";
import type { RestClient } from "./rest.js";

export interface Auth {
  /** Whether `renew` can replace an expiring access token (a login can; a fixed token cannot). */
  readonly renewable: boolean;
  /** The bearer token for the next socket upgrade (renewed first when it is about to expire); none = anonymous. */
  bearer(): Promise<string | undefined>;
  /** A fresh access token: refresh, or log in again when the refresh token is no longer accepted. */
  renew(): Promise<string>;
  /** Forget the current access token, so the next `bearer` renews (the server refused it). */
  invalidate(): void;
  /** End the session the client opened (log out); nothing for a fixed token. */
  end(): Promise<void>;
}

/** A bearer token used as is: an API token, or an access token the application keeps fresh. */
export class FixedToken implements Auth {
  readonly renewable: boolean = false;

  constructor(private readonly token: string | undefined) {}

  bearer(): Promise<string | undefined> {
    return Promise.resolve(this.token);
  }

  renew(): Promise<string> {
    return Promise.reject(new Error("a fixed token cannot be renewed; use an API token without expiry, or credentials"));
  }

  invalidate(): void {}

  end(): Promise<void> {
    return Promise.resolve();
  }
}

/** Logs in with a username and password, refreshes before expiry, logs in again when the refresh token is dead. */
export class LoginSession implements Auth {
  readonly renewable: boolean = true;
  private pair: TokenPair | undefined;
  /** When the access token expires (ms since the epoch, by this machine's clock at receipt). */
  private expiresAt = 0;
  /** One renewal at a time: refresh tokens are single-use, so two concurrent refreshes would fail one. */
  private renewing: Promise<string> | undefined;

  constructor(
    private readonly rest: RestClient,
    private readonly credentials: Credentials,
  ) {}

  /** The account, once logged in. */
  get user(): User | undefined {
    return this.pair?.user;
  }

  async bearer(): Promise<string> {
    if (this.pair === undefined) return this.login();
    // Renew when less than a third of the lifetime (at most 30 s) is left: a socket opened
    // with a token about to expire would be closed with 4001 before `session.expiring` helps.
    const margin = Math.min(30_000, (this.pair.expires_in * 1000) / 3);
    if (this.expiresAt - Date.now() < margin) return this.renew();
    return this.pair.access_token;
  }

  renew(): Promise<string> {
    this.renewing ??= this.refreshOrLogin().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  invalidate(): void {
    this.expiresAt = 0;
  }

  async end(): Promise<void> {
    const pair = this.pair;
    this.pair = undefined;
    if (pair !== undefined) await this.rest.logout(pair.access_token);
  }

  private async refreshOrLogin(): Promise<string> {
    if (this.pair === undefined) return this.login();
    try {
      return this.keep(await this.rest.refresh(this.pair.refresh_token));
    } catch (error) {
      // 401: the refresh token expired, was used already or its session was revoked.
      if (error instanceof HttpError && error.status === 401) return this.login();
      throw error;
    }
  }

  private async login(): Promise<string> {
    try {
      return this.keep(await this.rest.login(this.credentials));
    } catch (error) {
      // 401 wrong password, 422 a malformed username, 429 throttled: none gets better by
      // trying again at once. Network errors propagate as they are and are retried.
      if (error instanceof HttpError && error.status >= 400 && error.status < 500) throw new AuthFailed(error);
      throw error;
    }
  }

  private keep(pair: TokenPair): string {
    this.pair = pair;
    this.expiresAt = Date.now() + pair.expires_in * 1000;
    return pair.access_token;
  }
}
