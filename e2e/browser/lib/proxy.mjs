// Debian's nginx in front of the server under test, breaking WebSockets one of two ways:
//
// - "refusing": a plain `proxy_pass`, as most reverse proxies are set up: nginx drops the
//   hop-by-hop Upgrade header, so the server sees a plain GET on /ws and no socket opens.
// - "killing": passes the upgrade but cuts a socket after 300 ms of silence
//   (`proxy_read_timeout 300ms` on /ws), as gateways that kill long-lived sockets do. The
//   client counts a socket that dies within 5 s of opening as killed; the short silence keeps
//   every cut far inside that, however slowly a loaded machine runs the page's first calls.
//
// The configurations are those of the TypeScript client's tests (shared/client-ts/test/proxy.ts)
// but for the silence and the Host header, which keeps its port here: a browser sends `Origin`, and the
// server accepts it only when it names the host the request was sent to.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { TIMEOUT, sleep } from './harness.mjs';

const NGINX = process.env.CONFAB_NGINX ?? '/usr/sbin/nginx';

export class BreakingProxy {
  constructor(url, dir, child) {
    this.url = url;
    this.dir = dir;
    this.child = child;
  }

  /** Starts nginx in front of `upstream` (e.g. `http://127.0.0.1:8000`), `mode` "refusing" or
   * "killing", and waits until it answers. */
  static async start(upstream, mode) {
    if (spawnSync(NGINX, ['-v']).error) throw new Error(`no nginx at ${NGINX} (scripts/install-test-deps.sh installs it)`);
    const dir = mkdtempSync(join(tmpdir(), 'confab-nginx.'));
    for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, temp));
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), config(dir, port, new URL(upstream).host, mode));
    const child = spawn(NGINX, ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    const proxy = new BreakingProxy(`http://127.0.0.1:${port}`, dir, child);
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited at start:\n${proxy.log}`);
      try {
        if ((await fetch(`${proxy.url}/api/health`)).ok) return proxy;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`nginx did not answer within ${TIMEOUT} ms:\n${proxy.log}`);
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

// `proxy_buffering` stays on (nginx's default): the stream flows only because the server
// answers it with `X-Accel-Buffering: no`.
function config(dir, port, upstream, mode) {
  const ws =
    mode === 'killing'
      ? `
        location /ws {
            proxy_pass http://${upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300ms;
        }`
      : '';
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
        listen 127.0.0.1:${port};${ws}
        location / {
            proxy_pass http://${upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
        }
    }
}
`;
}
