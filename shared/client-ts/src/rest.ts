// The REST endpoints a socket client needs: accounts, login tokens, API tokens, publishing. Bodies are the
// generated `@confab/types`; a non-2xx answer is an `HttpError` with its problem+json.

import type {
  ApiToken,
  ApiTokenCreated,
  CreateApiToken,
  Credentials,
  Problem,
  PublishAccepted,
  PublishRequest,
  TokenPair,
  User,
} from "@confab/types";

import { HttpError } from "./errors.js";

export class RestClient {
  /** The server's origin without a trailing slash, e.g. `http://127.0.0.1:8000`. */
  readonly baseUrl: string;

  constructor(baseUrl: string) {
    const url = new URL(baseUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`the server URL must be http:// or https://, not ${url.protocol}`);
    }
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  /** `POST /api/auth/signup`: 201 with the new account. */
  signup(credentials: Credentials): Promise<User> {
    return this.request<User>("POST", "/api/auth/signup", credentials);
  }

  /** `POST /api/auth/login`: an access token (JWT) and a single-use refresh token. */
  login(credentials: Credentials): Promise<TokenPair> {
    return this.request<TokenPair>("POST", "/api/auth/login", credentials);
  }

  /** `POST /api/auth/refresh`: a rotated pair; the old refresh token stops working. */
  refresh(refreshToken: string): Promise<TokenPair> {
    return this.request<TokenPair>("POST", "/api/auth/refresh", { refresh_token: refreshToken });
  }

  /** `POST /api/auth/logout`: revokes the session; its sockets close with 4003. */
  logout(accessToken: string): Promise<void> {
    return this.request<void>("POST", "/api/auth/logout", undefined, accessToken);
  }

  /** `GET /api/me`: the account behind a token (an access token or an API token). */
  me(token: string): Promise<User> {
    return this.request<User>("GET", "/api/me", undefined, token);
  }

  /** `POST /api/tokens` (a login's access token; an API token cannot mint tokens): a
   * `cfb_…` API token, whose secret is in this answer only. */
  createApiToken(accessToken: string, request: CreateApiToken): Promise<ApiTokenCreated> {
    return this.request<ApiTokenCreated>("POST", "/api/tokens", request, accessToken);
  }

  /** `GET /api/tokens`: the caller's API tokens, without their secrets. */
  apiTokens(accessToken: string): Promise<ApiToken[]> {
    return this.request<ApiToken[]>("GET", "/api/tokens", undefined, accessToken);
  }

  /** `DELETE /api/tokens/{id}`: revokes an API token; every socket opened with it closes with 4003. */
  revokeApiToken(accessToken: string, id: number): Promise<void> {
    return this.request<void>("DELETE", `/api/tokens/${id}`, undefined, accessToken);
  }

  /** `POST /api/publish` (an admin, or an API token with the `publish` scope): a `notice` to a room, a user or everyone. */
  publish(token: string, request: PublishRequest): Promise<PublishAccepted> {
    return this.request<PublishAccepted>("POST", "/api/publish", request, token);
  }

  /** The socket URL of this server: `ws://…/ws` (or `wss://`). */
  socketUrl(): string {
    return this.baseUrl.replace(/^http/, "ws") + "/ws";
  }

  private async request<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(this.baseUrl + path, init);
    const text = await response.text();
    if (!response.ok) throw new HttpError(response.status, parseProblem(text));
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }
}

/** The problem+json document in an error body, if it is one. */
export function parseProblem(text: string): Problem | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && "title" in value ? (value as Problem) : undefined;
  } catch {
    return undefined;
  }
}
