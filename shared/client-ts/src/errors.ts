// The errors the client raises. Each names what failed and carries what a caller needs to
// react: the HTTP status and problem document, the JSON-RPC error code and data, or the
// method whose answer never came.

import type { ErrorObject, Problem } from "@confab/types";

/** A non-2xx answer of the REST API (or of the socket upgrade), with its problem+json body when there is one. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    super(problem ? `${status} ${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = "HttpError";
  }
}

/** A JSON-RPC error answer. `code` is one of `ErrorCodes`; `data` is `{field}` for -32602,
 * `{retry_after_ms}` for -32029 and `{scope}` for a call outside an API token's scopes. */
export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(
    readonly method: string,
    error: ErrorObject,
  ) {
    super(`${method}: ${error.message} (${error.code})`);
    this.name = "RpcError";
    this.code = error.code;
    this.data = error.data;
  }

  /** The offending param of an invalid-params error. */
  get field(): string | undefined {
    return this.stringData("field");
  }

  /** The scope an API token lacks for this call. */
  get scope(): string | undefined {
    return this.stringData("scope");
  }

  private stringData(key: string): string | undefined {
    const data = this.data as Record<string, unknown> | null | undefined;
    const value = typeof data === "object" && data !== null ? data[key] : undefined;
    return typeof value === "string" ? value : undefined;
  }
}

/** The connection went away after the call was sent and before its answer arrived: the call
 * may or may not have taken effect (retry sends with the same `nonce`). */
export class ConnectionLost extends Error {
  constructor(readonly method: string) {
    super(`${method}: the connection closed before the answer arrived`);
    this.name = "ConnectionLost";
  }
}

/** No answer (or no open connection to send on) within the call timeout. */
export class CallTimeout extends Error {
  constructor(
    readonly method: string,
    readonly ms: number,
  ) {
    super(`${method}: no answer within ${ms} ms`);
    this.name = "CallTimeout";
  }
}

/** The client is closed for good: by `close()`, or because the server refused its credentials. */
export class ClientClosed extends Error {
  constructor(
    readonly method: string,
    readonly closeCode: number | undefined,
  ) {
    super(`${method}: the client is closed${closeCode === undefined ? "" : ` (close code ${closeCode})`}`);
    this.name = "ClientClosed";
  }
}

/** The server refused the username and password (or throttled the login): retrying at once cannot help. */
export class AuthFailed extends Error {
  constructor(override readonly cause: HttpError) {
    super(`login refused: ${cause.message}`);
    this.name = "AuthFailed";
  }
}
