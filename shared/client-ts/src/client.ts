// One logical connection to Confab that outlives network failures and server restarts.
//
// Life of a client: `connect()` opens the socket (logging in first when given credentials)
// → "open". When the socket drops, pending calls fail with `ConnectionLost`, the state goes
// "reconnecting", and after a jittered backoff the client opens a new socket, re-joins its
// rooms and calls `sync` until `complete`; live messages arriving meanwhile are held and
// merged in, so each room and direct message reaches the handlers exactly once, in id
// order per room. Only then is the state "open" again, and calls made while reconnecting
// (which wait for it, up to the call timeout) go out. `close()` ends it for good.
//
// Transports (transport.ts): the WebSocket first; when its upgrade fails, or when it dies
// within `SHORT_LIVED_MS` of opening twice in a row without a close frame (a proxy that kills
// sockets), the client falls back to the HTTP stream for `webSocketRetryMs`, and the first
// reconnection after that tries the WebSocket again. Everything above the transport (calls,
// notifications, reconnect and `sync`, renewal) is the same on both.
//
// Calls pipeline on the socket up to `maxInFlight` at once; a call beyond that waits in a
// first-come queue for an earlier one to be answered, so a program firing thousands of calls
// holds a bounded number of pending ones (and the server, which stops reading a connection
// whose answers pile up, is not handed a pipeline it would only hold in its socket).

import {
  CloseCodes,
  ErrorCodes,
  MAX_CALLS_IN_FLIGHT,
  type Credentials,
  type DirectMessage,
  type Message,
  type MethodName,
  type NotificationFrame,
  type NotificationMethod,
  type NotificationParamsOf,
  type ParamsOf,
  type ResultOf,
  type RpcRequest,
  type ServerFrame,
  type User,
} from "@confab/types";

import { type Auth, FixedToken, LoginSession } from "./auth.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Cursors } from "./cursors.js";
import { AuthFailed, CallTimeout, ClientClosed, ConnectionLost, HttpError, RpcError } from "./errors.js";
import { RestClient } from "./rest.js";
import { type Transport, type TransportChoice, type TransportEvents, type TransportKind, openSocket, openStream } from "./transport.js";

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** How the client authenticates: an API token (or any bearer token), a login, or neither (anonymous). */
export type Authentication =
  | { token: string; credentials?: never }
  | { credentials: Credentials; token?: never }
  | { token?: never; credentials?: never };

export type ClientOptions = Authentication & {
  /** The server's origin, e.g. `http://127.0.0.1:8000`; the socket is its `/ws`, the stream its `/api/stream`. */
  url: string;
  /** `"auto"` (default): the WebSocket, falling back to the HTTP stream when the upgrade fails
   * or the socket dies within seconds of opening twice in a row; `"websocket"` or `"stream"`: only that one. */
  transport?: TransportChoice;
  /** After falling back to the stream, how long before a reconnection tries the WebSocket again (default 5 minutes). */
  webSocketRetryMs?: number;
  /** Reconnect after an unexpected close (default true). */
  reconnect?: boolean;
  /** Backoff between reconnection attempts (full jitter; defaults: Confab's policy, 500 ms doubling to 30 s, the first attempt within 5 s after a restart close). */
  backoff?: Partial<BackoffOptions>;
  /** How long a call may wait for an open connection and its answer (default 10 s). */
  callTimeoutMs?: number;
  /** A socket with no frame and no ping for this long is presumed dead and reconnected (default 70 s; the server pings every 20 s). */
  idleTimeoutMs?: number;
  /** The newest direct message id already handled (e.g. persisted by the application), so
   * catching up starts there. Without it the client looks the newest one up when it connects. */
  dmAfter?: number;
  /** Awaited before each reconnection attempt (after the backoff wait), e.g. to wait for the network. */
  beforeReconnect?: () => Promise<void>;
  /** With credentials: log the session out on `close()` (default true). */
  logoutOnClose?: boolean;
  /** Most calls in flight at once (default {@link DEFAULT_MAX_IN_FLIGHT}, 64; at least 1). A
   * call beyond it waits, first come first served, until an earlier call is answered (within
   * the call timeout); when the connection drops, waiting calls fail like the calls in flight. */
  maxInFlight?: number;
};

/** Calls in flight at once unless `maxInFlight` says otherwise: the protocol's
 * `MAX_CALLS_IN_FLIGHT`, as in the web app. */
export const DEFAULT_MAX_IN_FLIGHT: number = MAX_CALLS_IN_FLIGHT;

/** What one reconnection caught up on, in the order it was delivered. */
export interface Resync {
  messages: Message[];
  dms: DirectMessage[];
}

export interface StateChange {
  state: ConnectionState;
  /** The close code that caused the change, when a close did. */
  closeCode?: number;
  /** With "open": the transport the connection uses. */
  transport?: TransportKind | undefined;
  /** Why the client closed for good, when it did not close by `close()`. */
  error?: Error;
}

type Handler<N extends NotificationMethod> = (params: NotificationParamsOf<N>) => void;
type AnyHandler = (params: unknown) => void;

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A call waiting for a place in the in-flight window. */
interface SlotWaiter {
  method: string;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A WebSocket that dies this soon after opening, without a close frame, counts as killed by
 * the network; twice in a row and the client falls back to the stream. */
export const SHORT_LIVED_MS = 5_000;

/** How long the client stays on the stream after falling back, unless `webSocketRetryMs` says otherwise. */
export const DEFAULT_WEBSOCKET_RETRY_MS = 5 * 60_000;

export class ConfabClient {
  readonly rest: RestClient;
  private readonly auth: Auth;
  private readonly options: ClientOptions;
  private readonly callTimeoutMs: number;
  private readonly cursors: Cursors;
  private readonly backoff: Backoff;
  private readonly maxInFlight: number;

  private conn: Transport | undefined;
  /** Until when (epoch ms) connections open the stream rather than the WebSocket. */
  private streamUntil = 0;
  /** WebSockets in a row that the network killed within `SHORT_LIVED_MS` of opening. */
  private shortSockets = 0;
  private state: ConnectionState = "closed";
  private lastCloseCode: number | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Calls holding a place in the in-flight window (from the place's grant to the answer). */
  private inFlight = 0;
  /** The largest `pending` so far (`peakCallsInFlight`). */
  private peak = 0;
  /** Calls waiting for a place, oldest first. */
  private readonly slotWaiters: SlotWaiter[] = [];
  private readonly handlers = new Map<string, Set<AnyHandler>>();
  private readonly stateHandlers = new Set<(change: StateChange) => void>();
  private readonly resyncHandlers = new Set<(resync: Resync) => void>();
  private readonly renewHandlers = new Set<(expiresAt: string) => void>();
  private readonly errorHandlers = new Set<(error: Error) => void>();
  /** Calls made while not open wait here for the next "open" (or "closed"). */
  private readonly openWaiters = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  /** Live messages that arrive while catching up wait here, so order and de-duplication hold. */
  private held: NotificationFrame[] | undefined;
  /** Set by `close()`, for good: every background step checks it after each await. */
  private closing = false;
  /** One reconnection loop at a time: a close during catch-up restarts the loop's attempt, not a second loop. */
  private reconnecting = false;
  private renewing = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** When the current connection opened (epoch ms). */
  private openedAt = 0;
  /** Cuts the backoff wait short when `close()` is called. */
  private wake: (() => void) | undefined;

  constructor(options: ClientOptions) {
    if (options.token !== undefined && options.credentials !== undefined) {
      throw new TypeError("pass either a token or credentials, not both");
    }
    this.options = options;
    this.rest = new RestClient(options.url);
    this.auth = options.credentials ? new LoginSession(this.rest, options.credentials) : new FixedToken(options.token);
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.cursors = new Cursors(options.dmAfter);
    this.backoff = new Backoff(options.backoff);
    this.maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT));
  }

  /** Creates a client and connects it. */
  static async connect(options: ClientOptions): Promise<ConfabClient> {
    const client = new ConfabClient(options);
    await client.connect();
    return client;
  }

  /** Opens the socket (logging in first with credentials). Rejects when that fails, e.g.
   * `HttpError` 401 for a refused token or `AuthFailed` for refused credentials. */
  async connect(): Promise<void> {
    if (this.closing) throw new ClientClosed("connect", CloseCodes.Normal);
    if (this.state !== "closed") throw new Error(`connect() on a client that is ${this.state}`);
    this.setState({ state: "connecting" });
    try {
      this.held = [];
      await this.open();
      if (this.cursors.dmAfter === undefined && (await this.isAuthenticated())) await this.dmBaseline();
      this.flushHeld();
      this.setState({ state: "open", transport: this.conn?.kind });
    } catch (error) {
      this.held = undefined;
      this.conn?.terminate();
      this.conn = undefined;
      this.setState({ state: "closed", error: asError(error) });
      throw error;
    }
  }

  /** Calls a method; the params are checked and the result type follows from the method
   * name. While the client reconnects the call waits for it, and beyond `maxInFlight` calls
   * in flight it waits for an earlier one to be answered (both within the call timeout). */
  async call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const deadline = Date.now() + this.callTimeoutMs;
    const remaining = (): number => Math.max(1, deadline - Date.now());
    if (this.state !== "open") await this.whenOpen(method, this.callTimeoutMs);
    await this.takeSlot(method, remaining());
    try {
      const result = await this.send(method, params, remaining());
      await this.track(method, params, result);
      return result;
    } finally {
      this.releaseSlot();
    }
  }

  /** Calls holding a place in the in-flight window now (sent, or about to be). */
  get callsInFlight(): number {
    return this.inFlight;
  }

  /** The most calls sent and unanswered at once so far, for tests and diagnostics: at most
   * `maxInFlight`, plus one while the client renews its token or fixes a room's cursor. */
  get peakCallsInFlight(): number {
    return this.peak;
  }

  /** Sends a JSON-RPC notification (no id, no answer), e.g. `room.typing`. Returns false
   * when there was no open connection to send it on (notifications are not queued). */
  notify<M extends MethodName>(method: M, params: ParamsOf<M>): boolean {
    const conn = this.conn;
    if (this.state !== "open" || !conn?.isOpen) return false;
    const request: RpcRequest<M> = { jsonrpc: "2.0", method, params };
    conn.send(JSON.stringify(request)).catch((error: unknown) => this.reportError(error));
    return true;
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

  /** Follows the connection state. */
  onState(handler: (change: StateChange) => void): () => void {
    return subscribe(this.stateHandlers, handler);
  }

  /** Told what each reconnection caught up on (after the notification handlers got every item). */
  onResync(handler: (resync: Resync) => void): () => void {
    return subscribe(this.resyncHandlers, handler);
  }

  /** Told each time the client renewed its access token on the open socket (`auth.refresh`). */
  onRenewed(handler: (expiresAt: string) => void): () => void {
    return subscribe(this.renewHandlers, handler);
  }

  /** Told about failures in the background (a renewal or reconnection attempt that failed, a throwing handler). */
  onError(handler: (error: Error) => void): () => void {
    return subscribe(this.errorHandlers, handler);
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  /** The transport of the current connection ("websocket" or "stream"); undefined while there is none. */
  get transport(): TransportKind | undefined {
    return this.conn?.kind;
  }

  /** The newest message id delivered in `room` (or the baseline fixed when it was joined). */
  lastSeenIn(room: string): number | undefined {
    return this.cursors.lastSeenIn(room);
  }

  /** The newest direct message id delivered: persist it and pass it as `dmAfter` next time. */
  get dmCursor(): number | undefined {
    return this.cursors.dmAfter;
  }

  /** The account this client acts as (`GET /api/me` with its token); undefined when anonymous. */
  async me(): Promise<User | undefined> {
    const token = await this.auth.bearer();
    return token === undefined ? undefined : this.rest.me(token);
  }

  /** Closes for good: a 1000 close handshake (bounded), pending and waiting calls fail with
   * `ClientClosed`, no reconnection; with credentials the session is logged out. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const wasClosed = this.state === "closed";
    this.wake?.();
    this.failPending((method) => new ClientClosed(method, CloseCodes.Normal));
    const conn = this.conn;
    if (conn?.isOpen) await conn.close(CloseCodes.Normal);
    this.conn = undefined;
    this.failPending((method) => new ClientClosed(method, CloseCodes.Normal));
    if (this.options.credentials && this.options.logoutOnClose !== false) {
      // Best effort: the session expires by itself otherwise.
      await this.auth.end().catch((error: unknown) => this.reportError(error));
    }
    if (!wasClosed) this.setState({ state: "closed", closeCode: CloseCodes.Normal });
  }

  /** Drops the TCP connection without a close handshake, as a network failure would (for tests and demos). */
  dropConnection(): void {
    this.conn?.terminate();
  }

  // -------------------------------------------------------------------------------------
  // The socket

  /** Opens a connection on the transport the rules choose, falling back to the stream when
   * the WebSocket upgrade fails. */
  private async open(): Promise<void> {
    const token = await this.auth.bearer();
    let conn: Transport | undefined;
    const events: TransportEvents = {
      frame: (text) => {
        if (conn) this.touch(conn);
        this.receive(text);
      },
      alive: () => {
        if (conn) this.touch(conn);
      },
      closed: (code, local) => {
        if (conn) this.transportClosed(conn, code, local);
      },
    };
    const timeoutMs = this.callTimeoutMs;
    const stream = (): Promise<Transport> => openStream(this.rest.baseUrl, () => this.auth.bearer(), timeoutMs, events);
    if (this.nextTransport() === "stream") {
      conn = await stream();
    } else {
      try {
        conn = await openSocket(this.rest.socketUrl(), token, timeoutMs, events);
      } catch (error) {
        if (this.options.transport === "websocket" || !upgradeRefused(error)) throw error;
        conn = await stream();
        this.fallBack();
        this.reportError(new Error(`the WebSocket did not open (${asError(error).message}); using the HTTP stream`));
      }
    }
    if (this.closing) {
      conn.terminate();
      throw new ClientClosed("connect", CloseCodes.Normal);
    }
    if (!conn.isOpen) throw new Error(`the ${conn.kind} closed as it opened`);
    this.conn = conn;
    this.openedAt = Date.now();
    this.touch(conn);
  }

  /** The transport the next connection opens. */
  private nextTransport(): TransportKind {
    const forced = this.options.transport ?? "auto";
    if (forced !== "auto") return forced;
    return Date.now() < this.streamUntil ? "stream" : "websocket";
  }

  /** Connections open the stream for a while (`webSocketRetryMs`). */
  private fallBack(): void {
    this.shortSockets = 0;
    this.streamUntil = Date.now() + (this.options.webSocketRetryMs ?? DEFAULT_WEBSOCKET_RETRY_MS);
  }

  /** Restarts the idle watchdog: a connection silent for too long is presumed dead. */
  private touch(conn: Transport): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.conn === conn) conn.terminate();
    }, this.options.idleTimeoutMs ?? 70_000);
  }

  private receive(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      this.reportError(new Error("the server sent a frame that is not JSON"));
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

  /** Sends a call on the current socket, whatever the state (catching up uses it before "open"). */
  private send<M extends MethodName>(method: M, params: ParamsOf<M>, timeoutMs = this.callTimeoutMs): Promise<ResultOf<M>> {
    const conn = this.conn;
    if (!conn?.isOpen) return Promise.reject(new ConnectionLost(method));
    const id = this.nextId++;
    const request: RpcRequest<M> = { jsonrpc: "2.0", id, method, params };
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CallTimeout(method, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { method, resolve: (r) => resolve(r as ResultOf<M>), reject, timer });
      this.peak = Math.max(this.peak, this.pending.size);
      conn.send(JSON.stringify(request)).catch((error: unknown) => {
        const pending = this.pending.get(id);
        if (!pending) return;
        this.pending.delete(id);
        clearTimeout(pending.timer);
        // An error status of the stream's POST is the call's answer (e.g. 413), but for 404:
        // the stream ended, and its close is on the way.
        pending.reject(error instanceof HttpError && error.status !== 404 ? error : new ConnectionLost(method));
      });
    });
  }

  /** A place in the in-flight window: at once when one is free, else in turn (FIFO). */
  private takeSlot(method: string, timeoutMs: number): Promise<void> {
    if (this.inFlight < this.maxInFlight && this.slotWaiters.length === 0) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: SlotWaiter = {
        method,
        resolve,
        reject,
        timer: setTimeout(() => {
          const index = this.slotWaiters.indexOf(waiter);
          if (index >= 0) this.slotWaiters.splice(index, 1);
          reject(new CallTimeout(method, timeoutMs));
        }, timeoutMs),
      };
      this.slotWaiters.push(waiter);
    });
  }

  /** Gives a place back: straight to the oldest waiting call, if any. */
  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve();
    } else {
      this.inFlight--;
    }
  }

  private whenOpen(method: string, timeoutMs: number): Promise<void> {
    if (this.state === "closed") return Promise.reject(new ClientClosed(method, this.lastCloseCode));
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.openWaiters.delete(waiter);
        reject(new CallTimeout(method, timeoutMs));
      }, timeoutMs);
      this.openWaiters.add(waiter);
    });
  }

  /** Hands a notification to its handlers; messages only once each, in id order per room. */
  private deliver(frame: NotificationFrame): void {
    if (this.held && (frame.method === "room.message" || frame.method === "dm.message")) {
      this.held.push(frame);
      return;
    }
    if (frame.method === "room.message" && !this.cursors.admitMessage(frame.params)) return;
    if (frame.method === "dm.message" && !this.cursors.admitDm(frame.params)) return;
    if (frame.method === "session.expiring") void this.renewSession();
    this.emit(frame.method, frame.params);
  }

  private emit(method: string, params: unknown): void {
    for (const handler of this.handlers.get(method) ?? []) {
      try {
        handler(params);
      } catch (error) {
        this.reportError(error);
      }
    }
  }

  /** Keeps the rooms to re-join and their cursors in step with successful calls. */
  private async track<M extends MethodName>(method: M, params: ParamsOf<M>, result: ResultOf<M>): Promise<void> {
    if (method === "room.join") {
      const joined = result as ResultOf<"room.join">;
      const room = joined.room.name;
      if (!this.cursors.hasBaseline(room)) {
        // The first join fixes where catching up starts: after the newest message the caller
        // was shown, or, when it asked for no history, after the room's newest message.
        let newest = joined.history.at(-1)?.id;
        if (newest === undefined && joined.room.last_message_at !== null) {
          newest = (await this.send("room.history", { room, limit: 1 })).at(-1)?.id;
        }
        this.cursors.joined(room, newest ?? 0);
      } else {
        this.cursors.joined(room, 0);
      }
    } else if (method === "room.leave") {
      this.cursors.left((params as ParamsOf<"room.leave">).room);
    }
  }

  // -------------------------------------------------------------------------------------
  // Losing the connection and getting it back

  private transportClosed(conn: Transport, code: number, local: boolean): void {
    if (conn.kind === "websocket" && !local) {
      // A proxy that kills sockets: no close frame (1006), soon after opening.
      const killed = code === 1006 && Date.now() - this.openedAt < SHORT_LIVED_MS;
      this.shortSockets = killed ? this.shortSockets + 1 : 0;
      if (this.shortSockets >= 2 && this.options.transport !== "websocket") {
        this.fallBack();
        this.reportError(new Error("the WebSocket died right after opening twice in a row; using the HTTP stream"));
      }
    }
    if (this.conn !== conn) return;
    this.conn = undefined;
    clearTimeout(this.idleTimer);
    this.failPending((method) => new ConnectionLost(method));
    // A connection that dropped while connecting is the business of whoever awaited `open()`.
    if (this.closing || this.state === "closed" || this.state === "connecting") return;
    this.lastCloseCode = code;
    const final = this.finalClose(code);
    if (final) {
      this.setState({ state: "closed", closeCode: code, error: final });
      return;
    }
    this.setState({ state: "reconnecting", closeCode: code });
    if (!this.reconnecting) void this.reconnectLoop(code);
  }

  /** Why a close ends the client for good, or undefined when reconnecting can help. */
  private finalClose(code: number): Error | undefined {
    if (this.options.reconnect === false) return new Error(`the connection closed (${code}) and reconnecting is off`);
    // 4003: the session or API token was revoked; coming back would undo the revocation.
    if (code === CloseCodes.LoggedOut) return new Error("the session or token was revoked (4003)");
    // 4001: a fixed token expired. A login renews and reconnects.
    if (code === CloseCodes.TokenExpired && !this.auth.renewable) return new Error("the token expired (4001)");
    return undefined;
  }

  private async reconnectLoop(firstCode: number): Promise<void> {
    this.reconnecting = true;
    let closeCode: number | undefined = firstCode;
    if (firstCode === CloseCodes.TokenExpired) this.auth.invalidate();
    try {
      while (!this.closing && this.state === "reconnecting") {
        await this.sleep(this.backoff.next(closeCode));
        closeCode = undefined;
        if (this.closing) return;
        try {
          await this.options.beforeReconnect?.();
          if (this.closing) return;
          this.held = [];
          await this.open();
          if (this.closing) throw new ClientClosed("reconnect", CloseCodes.Normal);
          await this.catchUp();
          if (this.closing) throw new ClientClosed("reconnect", CloseCodes.Normal);
          this.backoff.reset();
          this.setState({ state: "open", transport: this.conn?.kind });
          return;
        } catch (error) {
          // Live messages held during a failed catch-up are dropped, not delivered:
          // delivering them would move the cursors past the gap the next `sync` has to fill.
          this.held = undefined;
          const conn = this.conn;
          this.conn = undefined;
          conn?.terminate();
          this.failPending((method) => new ConnectionLost(method));
          if (this.closing) return;
          if (error instanceof AuthFailed || (error instanceof HttpError && error.status === 401 && !this.auth.renewable)) {
            this.setState({ state: "closed", closeCode: CloseCodes.TokenExpired, error });
            return;
          }
          // 401 with a login: the access token was refused (revoked, or the server's key
          // changed); renew before the next attempt.
          if (error instanceof HttpError && error.status === 401) this.auth.invalidate();
          this.reportError(error);
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** Re-joins the rooms, then calls `sync` until complete; live messages are held meanwhile. */
  private async catchUp(): Promise<void> {
    for (const room of [...this.cursors.rooms]) {
      try {
        await this.send("room.join", { room, history: 0 });
      } catch (error) {
        // The room is gone or closed to us now: stop following it rather than fail forever.
        if (error instanceof RpcError && (error.code === ErrorCodes.Forbidden || error.code === ErrorCodes.NotFound)) {
          this.cursors.left(room);
          continue;
        }
        throw error;
      }
    }
    const caught: Resync = { messages: [], dms: [] };
    const authenticated = await this.isAuthenticated();
    for (;;) {
      const result = await this.send("sync", this.cursors.syncParams(authenticated));
      for (const message of result.messages) {
        if (this.cursors.admitMessage(message)) {
          caught.messages.push(message);
          this.emit("room.message", message);
        }
      }
      for (const dm of result.dms) {
        if (this.cursors.admitDm(dm)) {
          caught.dms.push(dm);
          this.emit("dm.message", dm);
        }
      }
      if (result.complete) break;
    }
    this.flushHeld();
    for (const handler of this.resyncHandlers) handler(caught);
  }

  /** Without a `dmAfter` from the application, the newest direct message id at connect time
   * is where catching up on DMs will start: older ones are history, not missed. */
  private async dmBaseline(): Promise<void> {
    let newest = 0;
    for (;;) {
      const result = await this.send("sync", { rooms: {}, dm_after: newest });
      newest = Math.max(newest, ...result.dms.map((dm) => dm.id));
      if (result.complete) break;
    }
    // DMs that arrived live while looking are new: deliver them first, then raise the cursor.
    this.cursors.dmAfter = 0;
    this.flushHeld();
    this.cursors.raiseDm(newest);
  }

  private flushHeld(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const frame of held) this.deliver(frame);
  }

  /** Answers `session.expiring`: a fresh access token (refresh, or log in again), handed to the socket. */
  private async renewSession(): Promise<void> {
    if (!this.auth.renewable || this.renewing) return;
    this.renewing = true;
    try {
      const token = await this.auth.renew();
      const result = await this.send("auth.refresh", { access_token: token });
      for (const handler of this.renewHandlers) handler(result.expires_at);
    } catch (error) {
      // The socket closes with 4001 at expiry, and reconnecting renews again.
      this.reportError(error);
    } finally {
      this.renewing = false;
    }
  }

  private async isAuthenticated(): Promise<boolean> {
    return this.auth.renewable || (await this.auth.bearer()) !== undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  /** Fails the calls in flight, and those waiting for a place among them. */
  private failPending(error: (method: string) => Error): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error(pending.method));
      this.pending.delete(id);
    }
    // Each failed waiter's place was never granted: only the window's holders release one.
    for (const waiter of this.slotWaiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error(waiter.method));
    }
  }

  private setState(change: StateChange): void {
    this.state = change.state;
    if (change.state === "open" || change.state === "closed") {
      for (const waiter of this.openWaiters) {
        if (change.state === "open") waiter.resolve();
        else waiter.reject(new ClientClosed("call", change.closeCode));
      }
      this.openWaiters.clear();
    }
    if (change.state === "closed") clearTimeout(this.idleTimer);
    for (const handler of this.stateHandlers) handler(change);
  }

  private reportError(error: unknown): void {
    const err = asError(error);
    for (const handler of this.errorHandlers) handler(err);
  }
}

function subscribe<T>(set: Set<T>, handler: T): () => void {
  set.add(handler);
  return () => set.delete(handler);
}

/** Whether a failed WebSocket upgrade reached something that refused it, so the stream may
 * pass where the socket did not. Not when nothing answered, nor when a proxy answers that its
 * server is down or restarting (502, 503, 504): the stream would fail the same way; and not
 * for a refused token or a full server, which refuse a stream alike. */
function upgradeRefused(error: unknown): boolean {
  if (error instanceof HttpError) return ![401, 429, 502, 503, 504].includes(error.status);
  const code = (error as { code?: unknown } | undefined)?.code;
  return !(typeof code === "string" && UNREACHABLE.has(code));
}

/** Network errors that mean the server could not be reached at all. */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]);

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
