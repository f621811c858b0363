#!/usr/bin/env node
// A real OAuth 2.1 / OpenID authorization server for interop tests, built on
// panva's oidc-provider. Listens on 127.0.0.1 only.
//
//   node as.mjs [--port N] [--access-token-ttl SECONDS] [--refresh-always]
//
// Port: --port, else env AS_PORT, else 0 (a free port). When ready it prints
// exactly one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:PORT","introspection_client_id":"...","introspection_client_secret":"...", ...}
// Everything else goes to stderr. Token values are never logged.
//
// Resource indicators (RFC 8707): any absolute http(s) resource is accepted.
//   - access tokens are RFC 9068 JWTs (typ at+jwt), aud = the resource, RS256;
//   - a resource whose URL path ends with `/es256-mcp` gets ES256-signed JWTs;
//   - a resource whose URL path ends with `/opaque-mcp` gets opaque tokens
//     (introspectable / revocable; oidc-provider refuses to introspect or revoke JWTs);
//   - scopes available for every resource: mcp:read mcp:write.
// Interaction is auto-approved for the fixed account `test-user`, granting
// exactly the scopes requested.

import { randomBytes, generateKeyPairSync, createHash } from 'node:crypto';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

import { parseArgs } from './lib/flow.mjs';

const args = parseArgs(process.argv.slice(2), {
  port: 'number', 'access-token-ttl': 'number', 'refresh-always': 'boolean',
});
const PORT = Number.isFinite(args.port) ? args.port : Number(process.env.AS_PORT ?? 0);
const ACCESS_TOKEN_TTL = args['access-token-ttl'] ?? 600;
const REFRESH_ALWAYS = !!args['refresh-always'];
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) throw new Error('invalid port');
if (!Number.isInteger(ACCESS_TOKEN_TTL) || ACCESS_TOKEN_TTL <= 0) throw new Error('invalid --access-token-ttl');

const TEST_ACCOUNT = 'test-user';
const MCP_SCOPES = 'mcp:read mcp:write';
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const log = (...a) => process.stderr.write(`[as] ${a.join(' ')}\n`);
// Start-up stages with their time since the process began, so a slow start shows where it waited.
const stage = (what) => log(`start-up: ${what} at ${Math.round(performance.now())} ms`);
stage('oidc-provider imported');

// --- signing keys: generated at startup, exported as JWK with kids ---------
function jwkWithKid(privateKey, alg) {
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = alg === 'RS256'
    ? { e: jwk.e, kty: 'RSA', n: jwk.n }
    : { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y };
  // RFC 7638 thumbprint as kid, prefixed with the alg for readability.
  const thumb = createHash('sha256').update(JSON.stringify(pub)).digest('base64url');
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${thumb.slice(0, 16)}` };
}
const rsaJwk = jwkWithKid(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'RS256');
const ecJwk = jwkWithKid(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'ES256');
stage('signing keys generated');

// --- static confidential client the resource server introspects with -----
const introspectionClient = {
  client_id: 'bearer-guard-rs',
  client_secret: randomBytes(32).toString('base64url'),
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: [],
  response_types: [],
  redirect_uris: [],
};

function resourceServerInfo(resourceIndicator) {
  const u = URL.parse(resourceIndicator);
  if (!u || !['http:', 'https:'].includes(u.protocol)) {
    throw new errors.InvalidTarget('resource must be an absolute http(s) URL');
  }
  const info = {
    scope: MCP_SCOPES,
    audience: resourceIndicator,
    accessTokenTTL: ACCESS_TOKEN_TTL,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
  if (u.pathname.endsWith('/opaque-mcp')) {
    info.accessTokenFormat = 'opaque';
    delete info.jwt;
  } else if (u.pathname.endsWith('/es256-mcp')) {
    info.jwt = { sign: { alg: 'ES256' } };
  }
  return info;
}

// Bind before building the Provider: the issuer needs the real port.
const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', resolve);
});
const { port } = server.address();
stage(`listening on 127.0.0.1:${port}`);
const ISSUER = `http://127.0.0.1:${port}`;

const provider = new Provider(ISSUER, {
  clients: [introspectionClient],
  jwks: { keys: [rsaJwk, ecJwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', 'mcp:read', 'mcp:write'],
  claims: { openid: ['sub'] },
  pkce: { required: () => true }, // oidc-provider v9 only knows S256
  responseTypes: ['code'],
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    id_token_signed_response_alg: 'RS256',
  },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? undefined,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => resourceServerInfo(resourceIndicator),
    },
  },
  // DCR: MCP clients send `scope` = the scope they are about to request (the
  // TS SDK sends the 401 challenge scope). oidc-provider treats a registered
  // `scope` as an allow-list, which would make the 403 step-up to mcp:write
  // fail with invalid_scope. So the registered scope is widened to everything
  // this AS supports. Also: plain-http redirect URIs are accepted only on
  // loopback hosts (any port); https anywhere.
  extraClientMetadata: {
    properties: ['interop_policy'],
    validator(_ctx, key, _value, metadata) {
      if (key !== 'interop_policy') return;
      if (metadata.scope !== undefined) {
        metadata.scope = 'openid offline_access mcp:read mcp:write';
      }
      for (const uri of metadata.redirect_uris ?? []) {
        const u = URL.parse(uri);
        if (u && u.protocol === 'http:' && !LOOPBACK_HOSTS.has(u.hostname)) {
          const err = new errors.InvalidRedirectUri();
          err.error_description = 'http redirect_uris must use a loopback host (127.0.0.1, localhost or [::1])';
          throw err;
        }
      }
      delete metadata.interop_policy;
    },
  },
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && (REFRESH_ALWAYS || code.scopes.has('offline_access')),
  rotateRefreshToken: () => true,
  async findAccount(_ctx, sub) {
    if (sub !== TEST_ACCOUNT) return undefined;
    return { accountId: TEST_ACCOUNT, async claims() { return { sub: TEST_ACCOUNT }; } };
  },
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

provider.on('server_error', (_ctx, err) => log('server_error:', err?.message ?? String(err)));

// --- auto-approving interaction -----------------------------------------
async function handleInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: TEST_ACCOUNT } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (prompt.name === 'consent') {
    const { accountId } = details.session;
    let grant;
    if (details.grantId) grant = await provider.Grant.find(details.grantId);
    if (!grant) grant = new provider.Grant({ accountId, clientId: params.client_id });
    const d = prompt.details ?? {};
    if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    return;
  }
  await provider.interactionFinished(req, res, {
    error: 'access_denied', error_description: `unsupported prompt ${prompt.name}`,
  }, { mergeWithLastSubmission: false });
}

const providerCallback = provider.callback();
server.on('request', (req, res) => {
  const { pathname } = new URL(req.url, ISSUER);
  if (/^\/interaction\/[^/]+$/.test(pathname) && (req.method === 'GET' || req.method === 'POST')) {
    handleInteraction(req, res).catch((err) => {
      log('interaction error:', err?.message ?? String(err));
      if (!res.headersSent) {
        res.writeHead(err?.statusCode ?? 500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err?.error ?? 'server_error', error_description: err?.error_description ?? err?.message }));
      }
    });
    return;
  }
  providerCallback(req, res);
});

let closing = false;
function shutdown(signal) {
  if (closing) return;
  closing = true;
  log(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

process.stdout.write(`${JSON.stringify({
  issuer: ISSUER,
  introspection_client_id: introspectionClient.client_id,
  introspection_client_secret: introspectionClient.client_secret,
  jwks_uri: `${ISSUER}/jwks`,
  access_token_ttl: ACCESS_TOKEN_TTL,
  signing_kids: { RS256: rsaJwk.kid, ES256: ecJwk.kid },
})}\n`);
