#!/usr/bin/env node
// End-to-end self test of as.mjs WITHOUT any MCP server: metadata, DCR,
// authorization code + PKCE by following redirects with a cookie jar, token
// claims (RFC 9068), refresh, introspection, revocation, resource-bound aud,
// ES256 resources, short TTL expiry.
//
//   node selftest.mjs                 # spawns its own as.mjs instances
//   node selftest.mjs --verbose       # also prints the AS's stderr
//
// Prints one line per check and a final `N passed, M failed`; exit 1 on failure.

import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  Checks, CookieJar, HERE, authorizationUrl, codeFlow, decodeJwt, discover, fetchT,
  followAuthorization, getJson, introspect, isJwt, parseArgs, pkcePair, registerClient, revoke,
  spawnReady, stopChild, tokenRequest, verifyJwt,
} from './lib/flow.mjs';

const args = parseArgs(process.argv.slice(2), { verbose: 'boolean' });
const AS_SCRIPT = path.join(HERE, 'as.mjs');
const RESOURCE = 'http://127.0.0.1:3000/mcp';
const RESOURCE_B = 'http://127.0.0.1:3001/other-mcp';
const RESOURCE_OPAQUE = 'http://127.0.0.1:3000/opaque-mcp';
const RESOURCE_ES256 = 'http://127.0.0.1:3000/es256-mcp';
const REDIRECT_URI = 'http://localhost:53682/callback';

const c = new Checks();
const children = [];

async function main() {
  const { child, ready } = await spawnReady(AS_SCRIPT, ['--port', '0'], { quiet: !args.verbose, prefix: 'as' });
  children.push(child);
  const { issuer } = ready;
  const rs = { clientId: ready.introspection_client_id, clientSecret: ready.introspection_client_secret };
  c.ok('AS ready line', /^http:\/\/127\.0\.0\.1:\d+$/.test(issuer) && rs.clientId && rs.clientSecret, `issuer ${issuer}`);

  // --- metadata -----------------------------------------------------------
  const meta = await discover(issuer);
  c.ok('RFC 8414 /.well-known/oauth-authorization-server', meta.issuer === issuer, `issuer=${meta.issuer}`);
  const oidc = await getJson(`${issuer}/.well-known/openid-configuration`);
  c.ok('OpenID discovery /.well-known/openid-configuration', oidc.status === 200 && oidc.json.issuer === issuer);
  c.ok('metadata code_challenge_methods_supported = [S256]',
    JSON.stringify(meta.code_challenge_methods_supported) === '["S256"]');
  c.ok('metadata has registration/introspection/revocation endpoints',
    !!(meta.registration_endpoint && meta.introspection_endpoint && meta.revocation_endpoint));
  c.ok('metadata scopes_supported has openid offline_access mcp:read mcp:write',
    ['openid', 'offline_access', 'mcp:read', 'mcp:write'].every((s) => meta.scopes_supported?.includes(s)));
  const jwks = (await getJson(meta.jwks_uri)).json;
  const algs = jwks.keys.map((k) => `${k.alg}:${k.kid}`);
  c.ok('JWKS has an RS256 and an ES256 key with kids',
    jwks.keys.some((k) => k.alg === 'RS256' && k.kid) && jwks.keys.some((k) => k.alg === 'ES256' && k.kid)
      && jwks.keys.every((k) => !k.d), algs.join(', '));

  // --- DCR ----------------------------------------------------------------
  // Exactly what the MCP TS SDK sends (application_type unset, scope = challenge scope).
  const reg = await registerClient(meta.registration_endpoint, {
    client_name: 'interop selftest',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    scope: 'mcp:read',
  });
  c.ok('DCR public client, http://localhost:PORT/callback, application_type unset', reg.status === 201 && !!reg.json?.client_id,
    `HTTP ${reg.status} application_type=${reg.json?.application_type} auth=${reg.json?.token_endpoint_auth_method} scope=${reg.json?.scope}`);
  const clientId = reg.json?.client_id;
  const reg127 = await registerClient(meta.registration_endpoint, {
    redirect_uris: ['http://127.0.0.1:61234/cb'], token_endpoint_auth_method: 'none', application_type: 'native',
  });
  c.ok('DCR native client with http://127.0.0.1:PORT redirect', reg127.status === 201, `HTTP ${reg127.status}`);
  const regBad = await registerClient(meta.registration_endpoint, {
    redirect_uris: ['http://example.test/cb'], token_endpoint_auth_method: 'none',
  });
  c.ok('DCR rejects a non-loopback http redirect URI', regBad.status === 400,
    `HTTP ${regBad.status} ${regBad.json?.error}`);

  // --- PKCE required ------------------------------------------------------
  {
    const url = authorizationUrl(meta.authorization_endpoint, {
      response_type: 'code', client_id: clientId, redirect_uri: REDIRECT_URI, scope: 'mcp:read', resource: RESOURCE, state: 'x',
    });
    const { params } = await followAuthorization(url, REDIRECT_URI, { jar: new CookieJar() });
    c.ok('authorization without code_challenge is refused', params.get('error') === 'invalid_request',
      `${params.get('error')}: ${params.get('error_description')}`);
  }

  // --- authorization code + PKCE with resource ----------------------------
  const jar = new CookieJar();
  let flow = await c.step('authorization code + PKCE (scope=mcp:read, resource)', () => codeFlow({
    meta, clientId, redirectUri: REDIRECT_URI, scope: 'mcp:read', resource: RESOURCE, jar,
  }));
  let at;
  if (flow) {
    const { tokenResponse: tr, authParams, hops } = flow;
    c.ok('authorization reached the redirect URI with a code (no browser)', !!authParams.get('code'),
      hops.map((h) => `${h.status} ${h.path.replace(/\/[\w-]{20,}$/, '/:uid')}`).join(' -> '));
    c.ok('authorization response carries iss (RFC 9207)', authParams.get('iss') === issuer);
    c.ok('token endpoint 200', tr.status === 200, `HTTP ${tr.status} ${tr.json?.error ?? ''} ${tr.json?.error_description ?? ''}`);
    at = tr.json?.access_token;
    c.ok('token_type Bearer', /^bearer$/i.test(tr.json?.token_type ?? ''), tr.json?.token_type);
    c.ok('access token is a JWT', isJwt(at));
    if (isJwt(at)) {
      const { header, payload } = decodeJwt(at);
      c.ok('JWT header typ is at+jwt (RFC 9068)', header.typ === 'at+jwt', `typ=${header.typ}`);
      c.ok('JWT alg RS256 by default with a kid', header.alg === 'RS256' && !!header.kid, `alg=${header.alg} kid=${header.kid}`);
      c.ok('aud = resource', payload.aud === RESOURCE || (Array.isArray(payload.aud) && payload.aud.includes(RESOURCE)),
        `aud=${JSON.stringify(payload.aud)}`);
      c.ok('iss = issuer', payload.iss === issuer, `iss=${payload.iss}`);
      c.ok('scope contains mcp:read and not mcp:write',
        payload.scope?.split(' ').includes('mcp:read') && !payload.scope.split(' ').includes('mcp:write'), `scope=${payload.scope}`);
      c.ok('sub = test-user, client_id = DCR client', payload.sub === 'test-user' && payload.client_id === clientId);
      c.ok('RFC 9068 required claims present (iss exp aud sub client_id iat jti)',
        ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'].every((k) => payload[k] !== undefined),
        Object.keys(payload).join(','));
      c.ok('exp - iat = default TTL 600', payload.exp - payload.iat === 600, `${payload.exp - payload.iat}s`);
      const v = await c.step('signature verifies against jwks_uri', () => verifyJwt(at, jwks));
      if (v) c.ok('signature verifies against jwks_uri', true, `kid=${v.key.kid}`);
    }
    c.ok('no refresh_token without offline_access', tr.json?.refresh_token === undefined);
  }

  // --- token request without resource (useGrantedResource) ---------------
  flow = await c.step('code exchange without re-sending resource', () => codeFlow({
    meta, clientId, redirectUri: REDIRECT_URI, scope: 'mcp:read', resource: RESOURCE, jar, tokenResource: undefined,
  }));
  if (flow) {
    const t = flow.tokenResponse.json?.access_token;
    c.ok('code exchange without re-sending resource still gets aud = resource',
      isJwt(t) && decodeJwt(t).payload.aud === RESOURCE, isJwt(t) ? `aud=${decodeJwt(t).payload.aud}` : `HTTP ${flow.tokenResponse.status}`);
  }

  // --- refresh (offline_access, rotation) ---------------------------------
  flow = await c.step('authorization with offline_access', () => codeFlow({
    meta, clientId, redirectUri: REDIRECT_URI, scope: 'mcp:read offline_access', resource: RESOURCE, jar, prompt: 'consent',
  }));
  if (flow) {
    const rt = flow.tokenResponse.json?.refresh_token;
    c.ok('refresh_token issued with offline_access', typeof rt === 'string', `token scope=${flow.tokenResponse.json?.scope}`);
    if (rt) {
      const r1 = await tokenRequest(meta.token_endpoint, { grant_type: 'refresh_token', refresh_token: rt }, { clientId });
      const t1 = r1.json?.access_token;
      c.ok('refresh without resource -> new JWT with aud = resource', r1.status === 200 && isJwt(t1) && decodeJwt(t1).payload.aud === RESOURCE,
        `HTTP ${r1.status} ${r1.json?.error ?? ''}`);
      c.ok('refresh token rotated', typeof r1.json?.refresh_token === 'string' && r1.json.refresh_token !== rt);
      const r2 = await tokenRequest(meta.token_endpoint, {
        grant_type: 'refresh_token', refresh_token: r1.json?.refresh_token, resource: RESOURCE,
      }, { clientId });
      c.ok('refresh with resource re-sent works', r2.status === 200 && isJwt(r2.json?.access_token), `HTTP ${r2.status} ${r2.json?.error ?? ''}`);
    }
  }

  // --- opaque tokens: introspection + revocation --------------------------
  flow = await c.step('authorization for the opaque resource', () => codeFlow({
    meta, clientId, redirectUri: REDIRECT_URI, scope: 'mcp:read mcp:write', resource: RESOURCE_OPAQUE, jar,
  }));
  if (flow) {
    const ot = flow.tokenResponse.json?.access_token;
    c.ok('opaque-resource token is not a JWT', typeof ot === 'string' && !isJwt(ot), `HTTP ${flow.tokenResponse.status}`);
    const i1 = await introspect(meta.introspection_endpoint, ot, rs);
    c.ok('introspection (client_secret_basic) -> active', i1.status === 200 && i1.json?.active === true, `HTTP ${i1.status}`);
    c.ok('introspection aud = opaque resource, scope, client_id, sub, iss, token_type',
      i1.json?.aud === RESOURCE_OPAQUE && i1.json?.scope === 'mcp:read mcp:write' && i1.json?.client_id === clientId
        && i1.json?.sub === 'test-user' && i1.json?.iss === issuer && i1.json?.token_type === 'Bearer',
      JSON.stringify({ aud: i1.json?.aud, scope: i1.json?.scope, token_type: i1.json?.token_type, exp_in: i1.json?.exp - Math.floor(Date.now() / 1000) }));
    const iBad = await introspect(meta.introspection_endpoint, ot, { clientId: rs.clientId, clientSecret: 'wrong' });
    c.ok('introspection with a wrong secret -> 401 invalid_client', iBad.status === 401 && iBad.json?.error === 'invalid_client', `HTTP ${iBad.status}`);
    const iNone = await introspect(meta.introspection_endpoint, 'not-a-real-token', rs);
    c.ok('introspection of an unknown token -> active:false', iNone.status === 200 && iNone.json?.active === false);
    const rv = await revoke(meta.revocation_endpoint, ot, { clientId });
    c.ok('revocation by the owning public client -> 200', rv.status === 200, `HTTP ${rv.status} ${rv.json?.error ?? ''}`);
    const i2 = await introspect(meta.introspection_endpoint, ot, rs);
    c.ok('after revocation introspection -> active:false', i2.status === 200 && i2.json?.active === false);
  }
  if (at) {
    const ij = await introspect(meta.introspection_endpoint, at, rs);
    c.info('introspecting a JWT access token', `HTTP ${ij.status} ${ij.json?.error ?? ''}: ${ij.json?.error_description ?? ''}`);
  }

  // --- resource B ---------------------------------------------------------
  flow = await c.step('authorization for resource B', () => codeFlow({
    meta, clientId, redirectUri: REDIRECT_URI, scope: 'mcp:write', resource: RESOURCE_B, jar,
  }));
  if (flow) {
    const tb = flow.tokenResponse.json?.access_token;
    const p = isJwt(tb) ? decodeJwt(tb).payload : {};
    c.ok('token for resource B has aud B (and only B)', p.aud === RESOURCE_B, `aud=${JSON.stringify(p.aud)} scope=${p.scope}`);
  }
  {
    // Asking the token endpoint for a different resource than was authorized must fail.
    const r = await c.step('code for A exchanged with resource=B', () => codeFlow({
      meta, clientId, redirectUri: REDIRECT_URI, scope: 'mcp:read', resource: RESOURCE, jar, tokenResource: RESOURCE_B,
    }));
    if (r) c.ok('code for A exchanged with resource=B -> invalid_target', r.tokenResponse.json?.error === 'invalid_target',
      `HTTP ${r.tokenResponse.status} ${r.tokenResponse.json?.error}`);
  }

  // --- ES256 resource -----------------------------------------------------
  flow = await c.step('authorization for the ES256 resource', () => codeFlow({
    meta, clientId, redirectUri: REDIRECT_URI, scope: 'mcp:read', resource: RESOURCE_ES256, jar,
  }));
  if (flow) {
    const te = flow.tokenResponse.json?.access_token;
    const h = isJwt(te) ? decodeJwt(te).header : {};
    c.ok('resource ending in /es256-mcp gets an ES256 JWT', h.alg === 'ES256' && h.typ === 'at+jwt', `alg=${h.alg} kid=${h.kid}`);
    if (isJwt(te)) {
      const v = await c.step('ES256 signature verifies against jwks_uri', () => verifyJwt(te, jwks));
      if (v) c.ok('ES256 signature verifies against jwks_uri', true);
    }
  }

  // --- short TTL AS -------------------------------------------------------
  const short = await spawnReady(AS_SCRIPT, ['--port', '0', '--access-token-ttl', '2'], { quiet: !args.verbose, prefix: 'as-ttl' });
  children.push(short.child);
  {
    const m2 = await discover(short.ready.issuer);
    const r2 = await registerClient(m2.registration_endpoint, {
      redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'],
    });
    const f2 = await c.step('short-TTL AS: code flow', () => codeFlow({
      meta: m2, clientId: r2.json.client_id, redirectUri: REDIRECT_URI, scope: 'mcp:read', resource: RESOURCE, jar: new CookieJar(),
    }));
    if (f2) {
      const t = f2.tokenResponse.json?.access_token;
      const p = isJwt(t) ? decodeJwt(t).payload : {};
      c.ok('--access-token-ttl 2 -> exp - iat = 2 and expires_in = 2', p.exp - p.iat === 2 && f2.tokenResponse.json?.expires_in === 2,
        `exp-iat=${p.exp - p.iat} expires_in=${f2.tokenResponse.json?.expires_in}`);
    }
    const f3 = await c.step('short-TTL AS: opaque code flow', () => codeFlow({
      meta: m2, clientId: r2.json.client_id, redirectUri: REDIRECT_URI, scope: 'mcp:read', resource: RESOURCE_OPAQUE, jar: new CookieJar(),
    }));
    if (f3) {
      const ot = f3.tokenResponse.json?.access_token;
      const rsShort = { clientId: short.ready.introspection_client_id, clientSecret: short.ready.introspection_client_secret };
      const before = await introspect(m2.introspection_endpoint, ot, rsShort);
      await sleep(3100);
      const after = await introspect(m2.introspection_endpoint, ot, rsShort);
      c.ok('short-TTL opaque token: active, then inactive after expiry', before.json?.active === true && after.json?.active === false,
        `before=${before.json?.active} after=${after.json?.active}`);
    }
  }

  // --- no token values in the AS output (spot check of the ready line) ----
  c.ok('AS did not crash', children.every((ch) => ch.exitCode === null));
}

let exitCode = 1;
try {
  await main();
} catch (err) {
  c.ok('selftest ran to completion', false, err?.stack ?? String(err));
} finally {
  await Promise.all(children.map((ch) => stopChild(ch)));
  exitCode = c.summary();
}
process.exit(exitCode);
