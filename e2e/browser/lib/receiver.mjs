// A webhook receiver for the browser suite: a plain HTTP server on 127.0.0.1 that records
// every request (headers and raw body) and can be told to fail the next N with a 500, so a
// test can watch a delivery fail and then succeed on retry.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

export async function startReceiver() {
  const requests = [];
  let failures = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const failed = failures > 0;
      if (failed) failures -= 1;
      requests.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered: failed ? 500 : 200 });
      res.writeHead(failed ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(failed ? 'failing on purpose' : 'ok');
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** The next `n` requests get a 500. */
    failNext(n) {
      failures = n;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        // The server under test keeps its connections alive; they would hold `close` open.
        server.closeAllConnections();
      }),
  };
}

/** Whether a recorded request carries a valid Standard Webhooks signature for `secret` (`whsec_…`). */
export function signatureValid(request, secret) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const id = request.headers['webhook-id'];
  const timestamp = request.headers['webhook-timestamp'];
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${request.body}`).digest();
  return String(request.headers['webhook-signature'] ?? '')
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .some((s) => {
      const given = Buffer.from(s.slice(3), 'base64');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}
