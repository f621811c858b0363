#!/usr/bin/env node
// A real DPoP client (panva's oauth4webapi, RFC 9449) end to end against the demo run with `--dpop required
// --dpop-nonces`, with oidc-provider (as.mjs) issuing DPoP-bound tokens. No browser.
//
//   node dpop-client.mjs --server http://127.0.0.1:PORT/mcp [--timeout 90]
//
// oauth4webapi does the OAuth work: RFC 9728 resource discovery from the 401 challenge, RFC 8414 AS discovery,
// dynamic client registration, authorization code + PKCE + RFC 8707 resource with a DPoP proof at the token
// endpoint (the AS binds the token: `cnf.jkt` in the JWT, or in the introspection answer of an opaque token),
// then MCP requests through `protectedResourceRequest` with a fresh proof each (its `htu`, `htm`, `ath`,
// `iat`, `jti`, and the server's nonce after the first `401 use_dpop_nonce`). The authorization page is
// followed with fetch through as.mjs's auto-approving interaction. Then what an attacker would try: the same
// proof again, the token as Bearer, a proof for another URL, another key's proof: each must be refused.
//
// Prints one line per check and `N passed, M failed`; exit 1 on any failure. Token values are never printed.

import * as oauth from 'oauth4webapi';

import {
  Checks, CookieJar, boundedFetch, decodeJwt, followAuthorization, isJwt, parseArgs,
} from './lib/flow.mjs';

const args = parseArgs(process.argv.slice(2), { server: 'string', timeout: 'number', verbose: 'boolean' });
if (!args.server) {
  console.error('usage: node dpop-client.mjs --server http://127.0.0.1:PORT/mcp');
  process.exit(2);
}
const SERVER = new URL(args.server);
const OPAQUE = SERVER.pathname.endsWith('/opaque-mcp');
const OVERALL_TIMEOUT_MS = (args.timeout ?? 90) * 1000;

const c = new Checks();
const watchdog = setTimeout(() => {
  c.ok('finished within the overall timeout', false, `${OVERALL_TIMEOUT_MS / 1000}s`);
  process.exit(c.summary());
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

// Every request oauth4webapi makes is time-bounded and the last one to the MCP server is kept (its headers
// hold the proof), so that it can be replayed byte for byte.
const bounded = boundedFetch(fetch, 15_000);
let lastMcpRequest;
const recordingFetch = (url, init) => {
  if (String(url).startsWith(SERVER.origin)) lastMcpRequest = { url: String(url), init: { ...init } };
  return bounded(url, init);
};
const http = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: recordingFetch };

/** `{scheme, parameters}` of every challenge, lower-case schemes (oauth4webapi's parsing, via its error). */
function challengesOf(err) {
  return err instanceof oauth.WWWAuthenticateChallengeError ? err.cause : [];
}
const dpopChallenge = (err) => challengesOf(err).find((ch) => ch.scheme === 'dpop');
const describe = (err) => (err instanceof oauth.WWWAuthenticateChallengeError
  ? `HTTP ${err.status} ${challengesOf(err).map((ch) => `${ch.scheme} ${JSON.stringify(ch.parameters)}`).join('; ')}`
  : `${err?.name}: ${err?.message}`);

const rpc = (id, method, params) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/**
 * One MCP request with a fresh proof; a `use_dpop_nonce` answer is retried once with the nonce oauth4webapi
 * cached from it (the documented way). Returns `{ response, text, nonceRounds }`; other challenges throw.
 */
async function mcp(token, dpop, body, { url = SERVER, fetchImpl } = {}) {
  let nonceRounds = 0;
  for (;;) {
    try {
      const response = await oauth.protectedResourceRequest(token, 'POST', url, MCP_HEADERS, body, {
        DPoP: dpop, ...http, ...(fetchImpl ? { [oauth.customFetch]: fetchImpl } : {}),
      });
      return { response, text: await response.text(), nonceRounds };
    } catch (err) {
      if (oauth.isDPoPNonceError(err) && nonceRounds === 0) {
        nonceRounds += 1;
        continue;
      }
      throw err;
    }
  }
}

/** Expects `fn` to be refused with 401 and a DPoP challenge carrying `error`. */
async function expectRefused(name, error, fn) {
  try {
    const r = await fn();
    c.ok(name, false, `HTTP ${r.response?.status ?? r.status} instead of 401`);
  } catch (err) {
    const ch = dpopChallenge(err);
    c.ok(name, err.status === 401 && ch?.parameters.error === error, describe(err));
  }
}

async function main() {
  // 1. Unauthenticated: the DPoP-only guard answers with one DPoP challenge naming the metadata.
  let metadataUrl;
  try {
    await mcp('unused', undefined, rpc(1, 'tools/list'), {
      fetchImpl: (url, init) => {
        const headers = { ...init.headers };
        delete headers.authorization;
        return bounded(url, { ...init, headers });
      },
    });
    c.ok('unauthenticated request refused', false, 'HTTP 200');
  } catch (err) {
    const ch = dpopChallenge(err);
    const bearer = challengesOf(err).find((x) => x.scheme === 'bearer');
    c.ok('unauthenticated: 401 with a DPoP challenge (algs, resource_metadata) and no Bearer one',
      err.status === 401 && ch && /ES256/.test(ch.parameters.algs ?? '') && !!ch.parameters.resource_metadata
      && !bearer && !ch.parameters.error, describe(err));
    metadataUrl = ch?.parameters.resource_metadata;
  }
  if (!metadataUrl) return;

  // 2. RFC 9728 resource metadata, then the authorization server's.
  const prm = await oauth.processResourceDiscoveryResponse(SERVER, await oauth.resourceDiscoveryRequest(SERVER, http));
  c.ok('resource metadata: dpop_bound_access_tokens_required and ES256 among the proof algorithms',
    prm.dpop_bound_access_tokens_required === true && prm.dpop_signing_alg_values_supported?.includes('ES256'),
    JSON.stringify({ r: prm.dpop_bound_access_tokens_required, algs: prm.dpop_signing_alg_values_supported }));
  const issuer = new URL(prm.authorization_servers[0]);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oauth2' }));
  c.ok('AS metadata lists DPoP algorithms', (as.dpop_signing_alg_values_supported ?? []).includes('ES256'));

  // 3. Dynamic registration of a public client.
  const redirectUri = 'http://127.0.0.1:9/callback';
  const client = await oauth.processDynamicClientRegistrationResponse(await oauth.dynamicClientRegistrationRequest(as, {
    client_name: 'bearer-guard interop: oauth4webapi DPoP client',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  }, http));
  c.ok('client registered', typeof client.client_id === 'string');

  // 4. The DPoP key, and a bound token for a scope.
  const keyPair = await oauth.generateKeyPair('ES256');
  const dpop = oauth.DPoP(client, keyPair);
  const jkt = await dpop.calculateThumbprint();
  const jar = new CookieJar();
  async function token(scope) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri, scope, state,
      resource: SERVER.href, code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    const { redirect } = await followAuthorization(url, redirectUri, { jar });
    const params = oauth.validateAuthResponse(as, client, new URL(redirect), state);
    const grant = (dpopHandle) => oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri,
      verifier, { ...http, DPoP: dpopHandle, additionalParameters: { resource: SERVER.href } });
    let response = await grant(dpop);
    // An AS may require its own nonce: oauth4webapi then retries with the nonce it cached.
    try {
      return await oauth.processAuthorizationCodeResponse(as, client, response);
    } catch (err) {
      if (!oauth.isDPoPNonceError(err)) throw err;
      response = await grant(dpop);
      return oauth.processAuthorizationCodeResponse(as, client, response);
    }
  }
  const read = await token('mcp:read');
  c.ok('token response: token_type DPoP', read.token_type === 'dpop', `token_type=${read.token_type}`);
  if (OPAQUE) {
    c.ok('opaque token (the demo binds it through introspection cnf)', !isJwt(read.access_token));
  } else {
    c.ok('JWT access token with cnf.jkt = the key thumbprint',
      isJwt(read.access_token) && decodeJwt(read.access_token).payload?.cnf?.jkt === jkt);
  }

  // 5. MCP with fresh proofs: the first request learns the server nonce.
  const init = await mcp(read.access_token, dpop, rpc(1, 'initialize', {
    protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'oauth4webapi-dpop', version: '1' },
  }));
  c.ok('initialize: 200 after one use_dpop_nonce round',
    init.response.status === 200 && init.nonceRounds === 1 && init.text.includes('serverInfo'),
    `HTTP ${init.response.status}, nonce rounds ${init.nonceRounds}`);
  const list = await mcp(read.access_token, dpop, rpc(2, 'tools/list'));
  c.ok('tools/list: 200 with the cached nonce, no new round',
    list.response.status === 200 && list.nonceRounds === 0 && list.text.includes('echo'));
  const echo = await mcp(read.access_token, dpop, rpc(3, 'tools/call', { name: 'echo', arguments: { text: 'dpop-interop' } }));
  c.ok('tools/call echo: 200', echo.response.status === 200 && echo.text.includes('dpop-interop'));

  // 6. Per-tool scope: 403 as a DPoP challenge, then step-up with the same key.
  try {
    await mcp(read.access_token, dpop, rpc(4, 'tools/call', { name: 'write_note', arguments: { note: 'x' } }));
    c.ok('write_note with mcp:read refused', false, 'HTTP 200');
  } catch (err) {
    const ch = dpopChallenge(err);
    c.ok('write_note with mcp:read: 403 DPoP insufficient_scope naming mcp:write',
      err.status === 403 && ch?.parameters.error === 'insufficient_scope' && /mcp:write/.test(ch.parameters.scope ?? ''),
      describe(err));
  }
  const write = await token('mcp:read mcp:write');
  const note = await mcp(write.access_token, dpop, rpc(5, 'tools/call', { name: 'write_note', arguments: { note: 'dpop' } }));
  c.ok('write_note after step-up: 200', note.response.status === 200 && !note.text.includes('"isError":true'));

  // 7. What an attacker with a copy of the traffic tries.
  const { signal: _used, ...replayInit } = lastMcpRequest.init;
  const replay = { url: lastMcpRequest.url, init: replayInit };
  await expectRefused('the same proof again (replay): 401 invalid_dpop_proof', 'invalid_dpop_proof', async () => {
    const response = await bounded(replay.url, replay.init);
    return oauth.protectedResourceRequest('x', 'POST', SERVER, {}, null, {
      ...http, [oauth.customFetch]: async () => response,
    });
  });
  await expectRefused('the bound token as Bearer (downgrade): 401 invalid_token', 'invalid_token', () => oauth
    .protectedResourceRequest(read.access_token, 'POST', SERVER, MCP_HEADERS, rpc(6, 'tools/list'), http));
  const elsewhere = new URL('/other-mcp', SERVER);
  await expectRefused('a proof for another URL (htu): 401 invalid_dpop_proof', 'invalid_dpop_proof', () => mcp(
    read.access_token, dpop, rpc(7, 'tools/list'), {
      url: elsewhere, fetchImpl: (_url, init) => bounded(SERVER.href, init),
    },
  ));
  const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  await expectRefused("another key's proof (thumbprint): 401 invalid_dpop_proof", 'invalid_dpop_proof', () => mcp(
    read.access_token, thief, rpc(8, 'tools/list'),
  ));
  const after = await mcp(read.access_token, dpop, rpc(9, 'tools/list'));
  c.ok('the rightful client still works afterwards', after.response.status === 200);
}

try {
  await main();
} catch (err) {
  c.ok('flow completed', false, describe(err));
}
clearTimeout(watchdog);
process.exit(c.summary());
