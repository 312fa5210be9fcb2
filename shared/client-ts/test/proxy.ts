// A real reverse proxy in front of a test server: Debian's nginx on a free loopback port, its
// configuration, logs and temp files in a temp dir. `proxy_buffering` stays at its default
// (on), so the stream flows only because the server answers it with `X-Accel-Buffering: no`.
//
// - "passing": the configuration docs/deployment.md recommends (Upgrade and Connection passed).
// - "refusing": a plain `proxy_pass`, as most proxies are set up: nginx drops the hop-by-hop
//   Upgrade header, so the server sees a plain GET on /ws and no socket ever opens.
// - "killing": passes the upgrade but gives a socket 1 s of silence before cutting it
//   (`proxy_read_timeout 1s` on /ws), as gateways that kill long-lived sockets do.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { WAIT_MS, freePort, sleep } from "./server.js";

export type ProxyMode = "passing" | "refusing" | "killing";

const NGINX = process.env["CONFAB_NGINX"] ?? "/usr/sbin/nginx";

export class Proxy {
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  /** Starts nginx in front of `upstream` (e.g. `http://127.0.0.1:8000`). */
  static async start(upstream: string, mode: ProxyMode): Promise<Proxy> {
    if (spawnSync(NGINX, ["-v"]).error) throw new Error(`no nginx at ${NGINX} (scripts/install-test-deps.sh installs it)`);
    const dir = mkdtempSync(join(tmpdir(), "confab-nginx."));
    for (const temp of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, temp));
    const port = await freePort();
    writeFileSync(join(dir, "nginx.conf"), config(dir, port, upstream.replace(/^http:\/\//, ""), mode));
    const child = spawn(NGINX, ["-e", join(dir, "error.log"), "-p", dir, "-c", join(dir, "nginx.conf")], { stdio: "ignore" });
    const proxy = new Proxy(`http://127.0.0.1:${port}`, dir, child);
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited at start:\n${proxy.log}`);
      try {
        if ((await fetch(`${proxy.url}/api/health`)).ok) return proxy;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`nginx did not answer within ${WAIT_MS} ms:\n${proxy.log}`);
      await sleep(50);
    }
  }

  /** nginx's error log, for a failing test's message. */
  get log(): string {
    try {
      return readFileSync(join(this.dir, "error.log"), "utf8");
    } catch {
      return "";
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
      this.child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function config(dir: string, port: number, upstream: string, mode: ProxyMode): string {
  const upgrade = `
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;`;
  const ws = mode === "refusing" ? "" : upgrade;
  const timeout = mode === "killing" ? "\n            proxy_read_timeout 1s;" : "";
  // As root, nginx's workers would run as nobody, who cannot use the temp dir.
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  return `${user}daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:${port};
        location /ws {
            proxy_pass http://${upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;${ws}${timeout}
        }
        location / {
            proxy_pass http://${upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
        }
    }
}
`;
}
