// Debian's nginx in front of a test server, on a free loopback port, its configuration, logs
// and temp files in a temp dir: the real reverse proxy both the browser suite and the
// TypeScript client's tests put between a client and the server.
//
// - "passing": the configuration docs/scale-out.md recommends (Upgrade and Connection passed).
// - "refusing": a plain `proxy_pass`, as most proxies are set up: nginx drops the hop-by-hop
//   Upgrade header, so the server sees a plain GET on /ws and no socket ever opens.
// - "killing": passes the upgrade but cuts a socket after `silence` without a frame
//   (`proxy_read_timeout` on /ws), as gateways that kill long-lived sockets do.
//
// `proxy_buffering` stays at its default (on): the HTTP stream flows only because the server
// answers it with `X-Accel-Buffering: no`.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const NGINX = process.env.CONFAB_NGINX ?? '/usr/sbin/nginx';

export class Nginx {
  constructor(url, dir, child) {
    this.url = url;
    this.dir = dir;
    this.child = child;
  }

  /** Starts nginx in front of `upstream` (e.g. `http://127.0.0.1:8000`) and waits until it
   * answers `/api/health`. `host` is the Host header passed upstream (`$host`, or
   * `$http_host` to keep the port, which a browser's `Origin` must match); `silence` the
   * killing mode's read timeout; `waitMs` how long nginx may take to answer. */
  static async start(upstream, { mode, host = '$host', silence = '1s', waitMs = 30_000 }) {
    if (spawnSync(NGINX, ['-v']).error) throw new Error(`no nginx at ${NGINX} (scripts/install-test-deps.sh installs it)`);
    const dir = mkdtempSync(join(tmpdir(), 'confab-nginx.'));
    for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, temp));
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), config({ dir, port, upstream: new URL(upstream).host, mode, host, silence }));
    const child = spawn(NGINX, ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    const nginx = new Nginx(`http://127.0.0.1:${port}`, dir, child);
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited at start:\n${nginx.log}`);
      try {
        if ((await fetch(`${nginx.url}/api/health`)).ok) return nginx;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`nginx did not answer within ${waitMs} ms:\n${nginx.log}`);
      await sleep(50);
    }
  }

  /** nginx's error log, for a failing test's message. */
  get log() {
    try {
      return readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function config({ dir, port, upstream, mode, host, silence }) {
  const upgrade = mode === 'refusing' ? '' : `
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;`;
  const timeout = mode === 'killing' ? `
            proxy_read_timeout ${silence};` : '';
  // As root, nginx's workers would run as nobody, who cannot use the temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
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
            proxy_set_header Host ${host};${upgrade}${timeout}
        }
        location / {
            proxy_pass http://${upstream};
            proxy_http_version 1.1;
            proxy_set_header Host ${host};
        }
    }
}
`;
}
