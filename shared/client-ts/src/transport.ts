// The two ways a client reaches the protocol, behind one shape: text frames out, text frames
// in, one close with a close code.
//
// - The WebSocket (`/ws`), the normal way.
// - The HTTP stream, for networks that break WebSockets: `GET /api/stream` is an event stream
//   of exactly the socket's frames (first `stream.opened {session}`, last `stream.closed
//   {code, reason}`), and each frame the client sends is a `POST /api/stream/{session}` whose
//   response is the answer. Read with `fetch` and a streaming body, since `EventSource` cannot
//   send an `Authorization` header.
//
// The client (client.ts) decides which one to open and when to fall back; a transport only
// carries frames.

import WebSocket from "ws";
import { SUBPROTOCOL } from "@confab/types";

import { HttpError } from "./errors.js";
import { parseProblem } from "./rest.js";

/** Which transport a connection uses. */
export type TransportKind = "websocket" | "stream";

/** The client's choice of transport: `"auto"` tries the WebSocket first and falls back to the stream. */
export type TransportChoice = TransportKind | "auto";

/** What a transport tells the client. */
export interface TransportEvents {
  /** A text frame from the server: a frame of the socket or stream, or a POST's answer. */
  frame(text: string): void;
  /** A sign of life that carries no frame: a ping, a keep-alive comment. */
  alive(): void;
  /** The transport ended, once, after it had opened. `local` when this side ended it
   * (`close`, `terminate`), so that only the network's closes count against a transport. */
  closed(code: number, local: boolean): void;
}

export interface Transport {
  readonly kind: TransportKind;
  /** Whether frames can be sent now. */
  readonly isOpen: boolean;
  /** Sends one text frame. Rejects when it was not delivered: on the stream, with the POST's
   * `HttpError` (e.g. 413 over the frame limit, 404 once the stream ended) or its network error. */
  send(text: string): Promise<void>;
  /** Ends the connection politely: a close handshake on the socket (bounded), the end of the request on the stream. */
  close(code: number): Promise<void>;
  /** Drops the connection at once, as a network failure would. */
  terminate(): void;
}

/** The close code of a connection that ended without a close frame (or `stream.closed`). */
const ABNORMAL = 1006;

/** How long `close()` waits for the server's close frame before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 2_000;

/** The most POSTs one stream has waiting for its session at once: the server refuses more (429). */
export const STREAM_POSTS_AT_ONCE = 8;

/** Opens a WebSocket to `url` (`ws://…/ws`). Rejects with `HttpError` when the upgrade is
 * answered with an HTTP status (a refused token, or a proxy that refuses upgrades). */
export function openSocket(url: string, token: string | undefined, timeoutMs: number, events: TransportEvents): Promise<Transport> {
  // Programs send the token in the Authorization header; browsers, which cannot, put
  // `bearer.<token>` after the subprotocol instead.
  const headers: Record<string, string> = {};
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const ws = new WebSocket(url, [SUBPROTOCOL], { headers, handshakeTimeout: timeoutMs });
  const transport = new SocketTransport(ws);
  return new Promise<Transport>((resolve, reject) => {
    let opened = false;
    ws.on("open", () => {
      opened = true;
      resolve(transport);
    });
    ws.on("unexpected-response", (_request, response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        reject(new HttpError(response.statusCode ?? 0, parseProblem(Buffer.concat(chunks).toString())));
        ws.terminate();
      });
    });
    ws.on("error", (error) => {
      if (!opened) reject(error);
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) events.alive();
      else events.frame(data.toString());
    });
    ws.on("ping", () => events.alive());
    ws.on("close", (code) => {
      if (opened) events.closed(code, transport.local);
      else reject(new Error(`the socket closed during the upgrade (${code})`));
    });
  });
}

class SocketTransport implements Transport {
  readonly kind = "websocket";
  /** Set when this side closed or dropped the socket. */
  local = false;

  constructor(private readonly ws: WebSocket) {}

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(text: string): Promise<void> {
    if (!this.isOpen) return Promise.reject(new Error("the socket is not open"));
    this.ws.send(text);
    return Promise.resolve();
  }

  close(code: number): Promise<void> {
    this.local = true;
    const ws = this.ws;
    if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_HANDSHAKE_MS);
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(code);
    });
  }

  terminate(): void {
    this.local = true;
    this.ws.terminate();
  }
}

/** Opens an HTTP stream at `baseUrl` (`http://host:port`): resolves once `stream.opened`
 * arrived. Rejects with `HttpError` when the server (or a proxy) answers with an error status
 * or something that is not an event stream. `bearer` gives the token for each request, so a
 * renewed access token is the one the POSTs carry. */
export async function openStream(
  baseUrl: string,
  bearer: () => Promise<string | undefined>,
  timeoutMs: number,
  events: TransportEvents,
): Promise<Transport> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`the stream did not open within ${timeoutMs} ms`)), timeoutMs);
  try {
    const headers = await authorization(bearer, { accept: "text/event-stream" });
    const response = await fetch(`${baseUrl}/api/stream`, { headers, signal: abort.signal });
    const type = response.headers.get("content-type") ?? "";
    if (!response.ok || !response.body || !type.startsWith("text/event-stream")) {
      const text = await response.text().catch(() => "");
      throw new HttpError(response.ok ? 502 : response.status, parseProblem(text));
    }
    const transport = new StreamTransport(baseUrl, bearer, abort, events);
    await transport.start(response.body.getReader());
    return transport;
  } catch (error) {
    abort.abort();
    throw abort.signal.reason instanceof Error && error instanceof Error && error.name === "AbortError" ? abort.signal.reason : error;
  } finally {
    clearTimeout(timer);
  }
}

class StreamTransport implements Transport {
  readonly kind = "stream";
  private session: string | undefined;
  private ended = false;
  private local = false;
  /** The close code `stream.closed` announced. */
  private closeCode: number | undefined;
  /** POSTs sent and not yet answered. */
  private posting = 0;
  /** Frames waiting for a POST to be answered, oldest first (the server takes at most
   * `STREAM_POSTS_AT_ONCE` at once). */
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly baseUrl: string,
    private readonly bearer: () => Promise<string | undefined>,
    private readonly abort: AbortController,
    private readonly events: TransportEvents,
  ) {}

  get isOpen(): boolean {
    return this.session !== undefined && !this.ended;
  }

  /** Reads the events until `stream.opened`, then keeps reading them in the background. */
  start(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      const onEvent = (data: string): void => {
        if (!opened) {
          const session = sessionOf(data);
          if (session === undefined) {
            reject(new Error("the stream did not open with stream.opened"));
            this.abort.abort();
            return;
          }
          this.session = session;
          opened = true;
          resolve();
          return;
        }
        const code = data.includes('"stream.closed"') ? closeCodeOf(data) : undefined;
        if (code !== undefined) this.closeCode = code;
        else this.events.frame(data);
      };
      void readEvents(reader, onEvent, () => this.events.alive()).then(
        () => this.end(opened, reject, new Error("the stream ended before stream.opened")),
        (error: unknown) => this.end(opened, reject, error),
      );
    });
  }

  private end(opened: boolean, reject: (error: unknown) => void, error: unknown): void {
    this.ended = true;
    for (const next of this.queue.splice(0)) next();
    if (opened) this.events.closed(this.closeCode ?? ABNORMAL, this.local);
    else reject(error);
  }

  async send(text: string): Promise<void> {
    if (!this.isOpen) throw new Error("the stream is not open");
    if (this.posting >= STREAM_POSTS_AT_ONCE) await new Promise<void>((resolve) => this.queue.push(resolve));
    if (!this.isOpen) throw new Error("the stream is not open");
    this.posting++;
    try {
      const headers = await authorization(this.bearer, { "content-type": "application/json", accept: "application/json" });
      const response = await fetch(`${this.baseUrl}/api/stream/${this.session}`, { method: "POST", headers, body: text, signal: this.abort.signal });
      const body = await response.text();
      if (!response.ok) throw new HttpError(response.status, parseProblem(body));
      if (response.status !== 204 && body !== "") this.events.frame(body);
    } finally {
      this.posting--;
      this.queue.shift()?.();
    }
  }

  close(): Promise<void> {
    // Ending the request ends the session: the server sees its response body dropped.
    this.terminate();
    return Promise.resolve();
  }

  terminate(): void {
    this.local = true;
    this.abort.abort();
  }
}

async function authorization(bearer: () => Promise<string | undefined>, headers: Record<string, string>): Promise<Record<string, string>> {
  const token = await bearer();
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  return headers;
}

/** Reads `text/event-stream` events: each event's `data:` lines (joined by line breaks) go to
 * `onEvent`, each comment to `onComment`. Resolves at the end of the body. */
async function readEvents(reader: ReadableStreamDefaultReader<Uint8Array>, onEvent: (data: string) => void, onComment: () => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      let line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (data.length > 0) onEvent(data.join("\n"));
        data = [];
      } else if (line.startsWith(":")) {
        onComment();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
      // Other fields (event:, id:, retry:) are not used by Confab.
    }
  }
}

function sessionOf(data: string): string | undefined {
  const frame = parseObject(data);
  const params = frame?.["method"] === "stream.opened" ? parseParams(frame) : undefined;
  return typeof params?.["session"] === "string" ? params["session"] : undefined;
}

function closeCodeOf(data: string): number | undefined {
  const frame = parseObject(data);
  const params = frame?.["method"] === "stream.closed" ? parseParams(frame) : undefined;
  return typeof params?.["code"] === "number" ? params["code"] : undefined;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function parseParams(frame: Record<string, unknown>): Record<string, unknown> | undefined {
  const params = frame["params"];
  return typeof params === "object" && params !== null ? (params as Record<string, unknown>) : undefined;
}
