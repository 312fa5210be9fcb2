// A real reverse proxy in front of a test server: Debian's nginx (e2e/lib/nginx.mjs, shared
// with the browser suite) on a free loopback port.
//
// - "passing": the configuration docs/scale-out.md recommends (Upgrade and Connection passed).
// - "refusing": a plain `proxy_pass`: nginx drops the Upgrade header, no socket ever opens.
// - "killing": passes the upgrade but gives a socket 1 s of silence before cutting it.

import { Nginx, type NginxMode } from "../../../e2e/lib/nginx.mjs";
import { WAIT_MS } from "./server.js";

export type ProxyMode = NginxMode;
export type Proxy = Nginx;

export const Proxy = {
  /** Starts nginx in front of `upstream` (e.g. `http://127.0.0.1:8000`). */
  start: (upstream: string, mode: ProxyMode): Promise<Proxy> => Nginx.start(upstream, { mode, silence: "1s", waitMs: WAIT_MS }),
};
