// A live Confab server for the tests: the release binary ($CONFAB_BIN, default
// target/release/confab of this repository) on a free loopback port with a fresh data dir
// (SQLite, in-process channel layer). `restart()` stops it with SIGTERM (sockets close with
// 1001) and starts it again on the same port and data dir, as a deploy would.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import type { TokenPair } from "@confab/types";
import { RestClient } from "@confab/client";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const bin = process.env["CONFAB_BIN"] ?? join(repo, "target/release/confab");

/** Every wait in the tests is bounded by this. */
export const WAIT_MS = 10_000;
export const PASSWORD = "correct horse battery";

export class TestServer {
  readonly url: string;
  readonly rest: RestClient;
  private child: ChildProcess | undefined;
  private log = "";

  private constructor(
    private readonly port: number,
    private readonly dataDir: string,
    private readonly env: Record<string, string>,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.rest = new RestClient(this.url);
  }

  /** Starts a server; `env` adds settings (e.g. `CONFAB_ACCESS_TTL_SECS`). */
  static async start(env: Record<string, string> = {}): Promise<TestServer> {
    const server = new TestServer(await freePort(), mkdtempSync(join(tmpdir(), "confab-client-ts.")), env);
    await server.spawn();
    return server;
  }

  /** SIGTERM, wait for the exit, start again on the same port and data dir. */
  async restart(between?: () => Promise<void>): Promise<void> {
    await this.terminate();
    await between?.();
    await this.spawn();
  }

  async stop(): Promise<void> {
    await this.terminate();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The server's log so far, for a failing test's message. */
  get output(): string {
    return this.log;
  }

  /** A new account, logged in. */
  async account(prefix: string): Promise<TokenPair> {
    const username = unique(prefix);
    await this.rest.signup({ username, password: PASSWORD });
    return this.rest.login({ username, password: PASSWORD });
  }

  private async spawn(): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env };
    delete env["DATABASE_URL"];
    delete env["REDIS_URL"];
    env["CONFAB_BIND"] = `127.0.0.1:${this.port}`;
    env["CONFAB_DATA_DIR"] = this.dataDir;
    env["RUST_LOG"] = env["RUST_LOG"] ?? "warn";
    const child = spawn(bin, ["serve"], { cwd: repo, env, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout?.on("data", (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (this.log += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`the server exited during startup:\n${this.log}`);
      try {
        const response = await fetch(`${this.url}/api/health`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`the server did not become healthy within 30 s:\n${this.log}`);
  }

  private async terminate(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), WAIT_MS);
    await exited;
    clearTimeout(timer);
  }
}

/** A name unique to this run (usernames and rooms). */
export function unique(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `predicate` holds (polling); rejects after `ms`. */
export async function eventually(what: string, predicate: () => boolean, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

/** A gate a test opens when it is ready: `wait` resolves once `open` was called. */
export function gate(): { wait: () => Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

/** A free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}
