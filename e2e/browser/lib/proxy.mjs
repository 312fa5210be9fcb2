// Debian's nginx in front of the server under test (e2e/lib/nginx.mjs), breaking WebSockets
// one of two ways:
//
// - "refusing": a plain `proxy_pass`: nginx drops the Upgrade header, no socket opens.
// - "killing": passes the upgrade but cuts a socket after 300 ms of silence. The client
//   counts a socket that dies within 5 s of opening as killed; the short silence keeps every
//   cut far inside that, however slowly a loaded machine runs the page's first calls.
//
// The Host header keeps its port: a browser sends `Origin`, and the server accepts it only
// when it names the host the request was sent to.

import { Nginx } from '../../lib/nginx.mjs';
import { TIMEOUT } from './harness.mjs';

export const BreakingProxy = {
  /** Starts nginx in front of `upstream` (e.g. `http://127.0.0.1:8000`), `mode` "refusing" or
   * "killing", and waits until it answers. */
  start: (upstream, mode) => Nginx.start(upstream, { mode, host: '$http_host', silence: '300ms', waitMs: TIMEOUT }),
};
