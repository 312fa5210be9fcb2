// A typed Confab client for Node: REST login, the JSON-RPC socket with typed calls and
// notifications, and automatic reconnection that catches up with `sync`.
//
// Everything protocol-shaped comes from `@confab/types`, the package generated from the
// server's Rust types (shared/bindings), so a change on the server that breaks this client
// breaks its compilation first.

import WebSocket from "ws";
import {
  CloseCodes,
  ErrorCodes,
  SUBPROTOCOL,
  type Credentials,
  type DirectMessage,
  type ErrorObject,
  type Message,
  type MethodName,
  type NotificationFrame,
  type NotificationMethod,
  type NotificationParamsOf,
  type ParamsOf,
  type Problem,
  type ResultOf,
  type RpcRequest,
  type ServerFrame,
  type TokenPair,
  type User,
} from "@confab/types";

// ---------------------------------------------------------------------------------------
// REST

/** A non-2xx answer of the REST API, with its problem+json body when there is one. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    super(problem ? `${status} ${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = "HttpError";
  }
}

/** The REST endpoints a socket client needs: accounts and tokens. */
export class RestClient {
  readonly baseUrl: string;

  /** `baseUrl` is the server's origin, e.g. `http://127.0.0.1:8000`. */
  constructor(baseUrl: string) {
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

  /** `GET /api/me`. */
  me(accessToken: string): Promise<User> {
    return this.request<User>("GET", "/api/me", undefined, accessToken);
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
    if (!response.ok) {
      let problem: Problem | undefined;
      try {
        problem = JSON.parse(text) as Problem;
      } catch {
        problem = undefined;
      }
      throw new HttpError(response.status, problem);
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }
}

// ---------------------------------------------------------------------------------------
// The socket

/** A JSON-RPC error answer. `code` is one of `ErrorCodes`; `data` is `{field}` for
 * -32602 and `{retry_after_ms}` for -32029. */
export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(readonly method: string, error: ErrorObject) {
    super(`${method}: ${error.message} (${error.code})`);
    this.name = "RpcError";
    this.code = error.code;
    this.data = error.data;
  }

  /** The offending param of an invalid-params error. */
  get field(): string | undefined {
    const data = this.data as { field?: unknown } | undefined;
    return typeof data?.field === "string" ? data.field : undefined;
  }
}

/** A call that could not be answered because the connection went away first. */
export class ConnectionLost extends Error {
  constructor(readonly method: string) {
    super(`${method}: the connection closed before the answer arrived`);
    this.name = "ConnectionLost";
  }
}

/** What one reconnection caught up on, in the order it was delivered. */
export interface Resync {
  messages: Message[];
  dms: DirectMessage[];
}

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface SocketOptions {
  /** `ws://host:port/ws`; see `RestClient.socketUrl()`. */
  url: string;
  /** The access token to open the socket with, asked for on every (re)connect; none = anonymous. */
  token?: () => string | undefined;
  /** Awaited before every reconnection attempt: the place to refresh an expiring token. */
  beforeReconnect?: () => Promise<void>;
  /** Reconnect after an unexpected close (default true). */
  reconnect?: boolean;
  /** First reconnection delay; doubled per failed attempt up to `maxDelayMs` (defaults 250 / 10 000). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** How long a call may wait for its answer (default 10 000 ms). */
  callTimeoutMs?: number;
  /** The last direct message id already seen, so the first `sync` does not replay older ones (default 0). */
  dmAfter?: number;
}

type Handler<N extends NotificationMethod> = (params: NotificationParamsOf<N>) => void;
type AnyHandler = (params: unknown) => void;

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** After 1001 (an instance stopping), the reconnection is spread over this many milliseconds. */
const RESTART_JITTER_MS = 1000;

/** Close codes after which reconnecting with the same token cannot work. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCodes.TokenExpired, CloseCodes.LoggedOut]);

/**
 * One logical connection to Confab. It survives network failures: after an unexpected close
 * it reconnects with exponential backoff, re-joins its rooms and calls `sync` until
 * `complete`, delivering every missed `room.message` and `dm.message` exactly once (by id) to
 * the same handlers as live ones.
 */
export class ConfabSocket {
  private ws: WebSocket | undefined;
  private state: ConnectionState = "closed";
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, Set<AnyHandler>>();
  private readonly stateHandlers = new Set<(state: ConnectionState, closeCode?: number) => void>();
  private readonly resyncHandlers = new Set<(resync: Resync) => void>();
  /** Room → the largest message id delivered; `sync` asks for what comes after. */
  private readonly lastSeen = new Map<string, number>();
  private lastDm: number;
  /** Rooms to re-join after a reconnect. */
  private readonly rooms = new Set<string>();
  /** Live messages that arrive while `sync` runs wait here, so order and de-duplication hold. */
  private held: NotificationFrame[] | undefined;
  private closing = false;
  private attempt = 0;
  /** The last close was 1001 (instance stopping): the next attempt waits only the jitter. */
  private restarting = false;
  /** One reconnection loop at a time: a close during catch-up fails its calls, not a second loop. */
  private reconnecting = false;

  constructor(private readonly options: SocketOptions) {
    this.lastDm = options.dmAfter ?? 0;
  }

  /** Opens the socket; rejects when the upgrade is refused (e.g. HTTP 401 for a bad token). */
  async connect(): Promise<void> {
    this.closing = false;
    this.setState("connecting");
    await this.open();
  }

  /** Calls a method; the result type follows from the method name. */
  call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ConnectionLost(method));
    }
    const id = this.nextId++;
    const request: RpcRequest<M> = { jsonrpc: "2.0", id, method, params };
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${this.options.callTimeoutMs ?? 10_000} ms`));
      }, this.options.callTimeoutMs ?? 10_000);
      this.pending.set(id, { method, resolve: (r) => resolve(r as ResultOf<M>), reject, timer });
      ws.send(JSON.stringify(request));
    }).then((result) => this.track(method, params, result));
  }

  /** Sends a JSON-RPC notification (no id, no answer), e.g. `room.typing`. */
  notify<M extends MethodName>(method: M, params: ParamsOf<M>): void {
    const request: RpcRequest<M> = { jsonrpc: "2.0", method, params };
    this.ws?.send(JSON.stringify(request));
  }

  /** Subscribes to a notification; the handler's params are typed by its method. Returns an unsubscribe. */
  on<N extends NotificationMethod>(method: N, handler: Handler<N>): () => void {
    let set = this.handlers.get(method);
    if (!set) {
      set = new Set();
      this.handlers.set(method, set);
    }
    const anyHandler = handler as AnyHandler;
    set.add(anyHandler);
    return () => set.delete(anyHandler);
  }

  /** Follows the connection state; `closeCode` is set when a close caused the change. */
  onState(handler: (state: ConnectionState, closeCode?: number) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /** Told what each reconnection caught up on (after the handlers got every item). */
  onResync(handler: (resync: Resync) => void): () => void {
    this.resyncHandlers.add(handler);
    return () => this.resyncHandlers.delete(handler);
  }

  /** The largest message id seen in `room`. */
  lastSeenIn(room: string): number | undefined {
    return this.lastSeen.get(room);
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  /** Closes for good (1000); no reconnection. */
  close(): void {
    this.closing = true;
    this.ws?.close(CloseCodes.Normal);
    this.setState("closed");
  }

  /** Drops the TCP connection without a close handshake, as a network failure would. */
  dropConnection(): void {
    this.ws?.terminate();
  }

  // -------------------------------------------------------------------------------------

  private open(): Promise<void> {
    const token = this.options.token?.();
    const headers: Record<string, string> = {};
    // Programs send the token in the Authorization header; browsers, which cannot, put
    // `bearer.<token>` after the subprotocol instead.
    if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
    const ws = new WebSocket(this.options.url, [SUBPROTOCOL], { headers });
    this.ws = ws;
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      ws.on("open", () => {
        opened = true;
        this.attempt = 0;
        this.setState("open");
        resolve();
      });
      ws.on("unexpected-response", (_request, response) => {
        reject(new HttpError(response.statusCode ?? 0, undefined));
        response.resume();
        ws.terminate();
      });
      ws.on("error", (error) => {
        if (!opened) reject(error);
      });
      ws.on("message", (data, isBinary) => {
        if (!isBinary) this.receive(data.toString());
      });
      ws.on("close", (code) => {
        if (this.ws !== ws) return;
        this.ws = undefined;
        this.failPending();
        if (opened) this.closed(code);
      });
    });
  }

  private receive(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    for (const item of Array.isArray(frame) ? frame : [frame]) {
      if ("method" in item) {
        this.deliver(item);
      } else if (typeof item.id === "number") {
        const pending = this.pending.get(item.id);
        if (!pending) continue;
        this.pending.delete(item.id);
        clearTimeout(pending.timer);
        if ("error" in item) pending.reject(new RpcError(pending.method, item.error));
        else pending.resolve(item.result);
      }
    }
  }

  /** Hands a notification to its handlers; messages only once each, in id order per room. */
  private deliver(frame: NotificationFrame): void {
    if (this.held && (frame.method === "room.message" || frame.method === "dm.message")) {
      this.held.push(frame);
      return;
    }
    if (frame.method === "room.message" && !this.advanceRoom(frame.params)) return;
    if (frame.method === "dm.message" && !this.advanceDm(frame.params)) return;
    const handlers = this.handlers.get(frame.method);
    if (!handlers) return;
    for (const handler of handlers) {
      try {
        handler(frame.params);
      } catch (error) {
        console.error(`handler for ${frame.method} failed:`, error);
      }
    }
  }

  private advanceRoom(message: Message): boolean {
    const last = this.lastSeen.get(message.room) ?? 0;
    if (message.id <= last) return false;
    this.lastSeen.set(message.room, message.id);
    return true;
  }

  private advanceDm(dm: DirectMessage): boolean {
    if (dm.id <= this.lastDm) return false;
    this.lastDm = dm.id;
    return true;
  }

  /** Keeps the reconnection state in step with successful calls. */
  private async track<M extends MethodName>(method: M, params: ParamsOf<M>, result: ResultOf<M>): Promise<ResultOf<M>> {
    if (method === "room.join") {
      const joined = result as ResultOf<"room.join">;
      const room = joined.room.name;
      this.rooms.add(room);
      if (!this.lastSeen.has(room)) {
        // The first join fixes where catching up starts: after the newest message the caller
        // was shown, or, when it asked for no history, after the room's newest message.
        let newest = joined.history.at(-1)?.id;
        if (newest === undefined && joined.room.last_message_at !== null) {
          newest = (await this.call("room.history", { room, limit: 1 })).at(-1)?.id;
        }
        if (!this.lastSeen.has(room)) this.lastSeen.set(room, newest ?? 0);
      }
    } else if (method === "room.leave") {
      const room = (params as ParamsOf<"room.leave">).room;
      this.rooms.delete(room);
      this.lastSeen.delete(room);
    }
    return result;
  }

  private failPending(): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new ConnectionLost(pending.method));
      this.pending.delete(id);
    }
  }

  private closed(code: number): void {
    if (this.closing || this.options.reconnect === false || FINAL_CLOSE_CODES.has(code)) {
      // 4001/4003: the token is dead; the application must log in or refresh and connect again.
      this.setState("closed", code);
      return;
    }
    if (code === CloseCodes.GoingAway) {
      // The instance is stopping and the others serve: reconnect now, jittered over a second.
      this.attempt = 0;
      this.restarting = true;
    }
    this.setState("reconnecting", code);
    if (!this.reconnecting) void this.reconnectLoop();
  }

  private async reconnectLoop(): Promise<void> {
    this.reconnecting = true;
    try {
      await this.reconnectUntilCaughtUp();
    } finally {
      this.reconnecting = false;
    }
  }

  private async reconnectUntilCaughtUp(): Promise<void> {
    while (!this.closing) {
      const initial = this.options.initialDelayMs ?? 250;
      const delay = Math.min(initial * 2 ** this.attempt, this.options.maxDelayMs ?? 10_000);
      this.attempt += 1;
      // Full jitter keeps a fleet of clients from reconnecting in lockstep after a restart.
      const wait = this.restarting ? Math.random() * RESTART_JITTER_MS : delay / 2 + Math.random() * (delay / 2);
      this.restarting = false;
      await sleep(wait);
      if (this.closing) return;
      try {
        await this.options.beforeReconnect?.();
        this.held = [];
        await this.open();
        await this.catchUp();
        return;
      } catch (error) {
        // Live messages held during a failed catch-up are dropped, not delivered: delivering
        // them would move the last-seen ids past the gap the next `sync` has to fill.
        this.held = undefined;
        this.ws?.terminate();
        if (error instanceof HttpError && error.status === 401) {
          this.setState("closed", CloseCodes.TokenExpired);
          return;
        }
        // Anything else (refused, reset, closed during catch-up): try again later.
      }
    }
  }

  /** Re-joins the rooms, then calls `sync` until complete; live messages wait meanwhile. */
  private async catchUp(): Promise<void> {
    for (const room of [...this.rooms]) {
      try {
        await this.call("room.join", { room, history: 0 });
      } catch (error) {
        if (error instanceof RpcError && (error.code === ErrorCodes.Forbidden || error.code === ErrorCodes.NotFound)) {
          this.rooms.delete(room);
          continue;
        }
        throw error;
      }
    }
    const caught: Resync = { messages: [], dms: [] };
    const authenticated = this.options.token?.() !== undefined;
    for (;;) {
      const rooms: Record<string, number> = {};
      for (const room of this.rooms) rooms[room] = this.lastSeen.get(room) ?? 0;
      const params: ParamsOf<"sync"> = authenticated ? { rooms, dm_after: this.lastDm } : { rooms };
      const result = await this.call("sync", params);
      for (const message of result.messages) {
        if (this.advanceRoom(message)) {
          caught.messages.push(message);
          this.emit("room.message", message);
        }
      }
      for (const dm of result.dms) {
        if (this.advanceDm(dm)) {
          caught.dms.push(dm);
          this.emit("dm.message", dm);
        }
      }
      if (result.complete) break;
    }
    this.flushHeld();
    for (const handler of this.resyncHandlers) handler(caught);
  }

  private flushHeld(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const frame of held) this.deliver(frame);
  }

  private emit<N extends NotificationMethod>(method: N, params: NotificationParamsOf<N>): void {
    for (const handler of this.handlers.get(method) ?? []) handler(params);
  }

  private setState(state: ConnectionState, closeCode?: number): void {
    this.state = state;
    for (const handler of this.stateHandlers) handler(state, closeCode);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
