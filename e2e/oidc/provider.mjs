// A real OpenID Connect provider for the "Log in with" suite: the certified oidc-provider
// package with its development login page (any login and password), one public client
// (`confab-web`, PKCE required, no secret) and the RS256 signing keys of a JWKS file.
//
// Environment: OIDC_PORT (loopback port), OIDC_KEYS (a file {"keys": [private JWKs]}: the
// first signs, all are published), OIDC_REDIRECT_URIS (space-separated).
// Prints "ready" once it listens; stops on SIGTERM, or when the process that started it is gone.

import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const jwks = JSON.parse(readFileSync(process.env.OIDC_KEYS, 'utf8'));

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'confab-web',
      token_endpoint_auth_method: 'none',
      redirect_uris: process.env.OIDC_REDIRECT_URIS.split(' '),
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  jwks,
  // The login's account: its id is what was typed on the login page.
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, preferred_username: id, name: id }),
  }),
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'] },
  // Profile claims in the ID token itself (Confab reads `preferred_username` from it).
  conformIdTokenClaims: false,
  cookies: { keys: ['confab-e2e-cookie-signing-key'] },
  features: { devInteractions: { enabled: true } },
});

const server = provider.listen(port, '127.0.0.1', () => console.log('ready'));

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Never outlive the test that started it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 500).unref();
