#!/usr/bin/env node
// Negative cases through the real demo server (examples/demo, guarded by
// bearer-guard) with tokens from a real AS (as.mjs):
//
//   A. JWT demo: a token for another resource (aud = http://127.0.0.1:PORT/other)
//      -> 401 invalid_token; a malformed token -> 401 invalid_token (a token for
//      the demo's own resource -> 200 first, as the control).
//   B. Expired JWT: AS with --access-token-ttl 2; the token works at once, and
//      after exp + the demo's leeway it gets 401 invalid_token.
//   C. Introspected opaque tokens (demo with --introspection-url, resource
//      */opaque-mcp): an opaque token for another resource -> 401; a revoked
//      token -> 401 invalid_token once the demo's introspection cache TTL has
//      passed.
//   D. JWTs of an issuer the demo does not trust, at the introspecting demo:
//      refused locally -> 401 invalid_token (never 503); with --introspect-jwts
//      they are sent to the AS, which answers 400 unsupported_token_type, and
//      that definite answer is a 401 invalid_token too (not a 503).
//
//   node negative.mjs [--demo PATH] [--slow] [--verbose]
//
// --demo: the demo binary (default ../../target/debug/examples/demo; build it
// with `cargo build --example demo`).
//
// B and C wait for the demo's clock leeway (60 s by default) and introspection
// cache TTL (60 s by default). When the demo has `--leeway SECS` and
// `--introspection-cache-ttl SECS` (read from its --help), they are set to
// 1 s / 2 s and the waits take seconds. Without them the late checks print a
// SKIP line, unless --slow is given: then they wait for the defaults (both
// waits overlap, about 65 s).
//
// Prints one PASS/FAIL/SKIP line per check (INFO lines are not counted) and
// `N passed, M failed[, K skipped]`; exit 1 on any failure. Token values are
// never printed.

import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  Checks, CookieJar, HERE, cleanupOnSignals, codeFlow, decodeJwt, discover, fetchT, isJwt, parseArgs,
  registerClient, revoke, spawnGroup, spawnReady, stopChild, stopGroup,
} from './lib/flow.mjs';

const args = parseArgs(process.argv.slice(2), { demo: 'string', slow: 'boolean', verbose: 'boolean' });
const DEMO = args.demo ?? path.join(HERE, '..', '..', 'target', 'debug', 'examples', 'demo');
const AS_SCRIPT = path.join(HERE, 'as.mjs');
const DEFAULT_LEEWAY_S = 60; // JwtValidator / IntrospectionValidator default
const DEFAULT_CACHE_TTL_S = 60; // IntrospectionValidator active-answer cache default
const FAST_LEEWAY_S = 1;
const FAST_CACHE_TTL_S = 2;
const MARGIN_MS = 1500;
const OVERALL_TIMEOUT_MS = 150_000;

class NegativeChecks extends Checks {
  skipped = 0;

  skip(name, why) {
    this.skipped += 1;
    console.log(`SKIP ${name} - ${why}`);
  }

  summary() {
    console.log(`${this.passed} passed, ${this.failed} failed${this.skipped ? `, ${this.skipped} skipped` : ''}`);
    return this.failed === 0 ? 0 : 1;
  }
}

const c = new NegativeChecks();
const children = []; // { child, group }
const watchdog = setTimeout(async () => {
  c.ok('finished within the overall timeout', false, `${OVERALL_TIMEOUT_MS / 1000}s`);
  await cleanup();
  process.exit(c.summary());
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

// --- processes -------------------------------------------------------------------
async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startAs(extra = []) {
  const as = await spawnReady(AS_SCRIPT, ['--port', '0', ...extra], { quiet: !args.verbose, prefix: 'as' });
  children.push({ child: as.child, group: false });
  return as.ready;
}

/** Starts the demo on a free loopback port and waits until its PRM answers 200. */
async function startDemo(name, { resourcePath = '/mcp', issuer, extra = [] }) {
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}${resourcePath}`;
  const argv = ['--listen', `127.0.0.1:${port}`, '--resource', resource, '--issuer', issuer, ...extra];
  const child = spawnGroup(DEMO, argv, {
    stdio: ['ignore', args.verbose ? 'inherit' : 'ignore', args.verbose ? 'inherit' : 'ignore'],
  });
  children.push({ child, group: true });
  const prm = `http://127.0.0.1:${port}/.well-known/oauth-protected-resource${resourcePath}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const res = await fetchT(prm, {}, 2000);
      await res.body?.cancel();
      if (res.status === 200) {
        c.info(`demo ${name} ready`, resource);
        return resource;
      }
    } catch { /* not up yet */ }
    await sleep(200);
  }
  throw new Error(`demo ${name} did not serve ${prm} (exit code ${child.exitCode})`);
}

async function cleanup() {
  await Promise.all(children.splice(0).map(({ child, group }) => (group ? stopGroup(child) : stopChild(child))));
}
cleanupOnSignals(cleanup);

// --- tokens and MCP calls ---------------------------------------------------------------
const metaCache = new Map();

/** Registers a public client at `issuer` and runs code + PKCE for `resource`; returns the token response. */
async function getToken(issuer, resource, scope = 'mcp:read') {
  if (!metaCache.has(issuer)) metaCache.set(issuer, await discover(issuer));
  const meta = metaCache.get(issuer);
  const redirectUri = `http://localhost:${await freePort()}/callback`;
  const reg = await registerClient(meta.registration_endpoint, {
    client_name: 'bearer-guard interop negative cases',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });
  if (reg.status !== 201) throw new Error(`DCR: HTTP ${reg.status} ${reg.json?.error ?? ''}`);
  const clientId = reg.json.client_id;
  const { tokenResponse } = await codeFlow({ meta, clientId, redirectUri, scope, resource, jar: new CookieJar() });
  if (tokenResponse.status !== 200) {
    throw new Error(`token for ${resource}: HTTP ${tokenResponse.status} ${tokenResponse.json?.error ?? ''}`);
  }
  return { ...tokenResponse.json, clientId, meta };
}

function challengeParams(header) {
  const out = {};
  for (const m of (header ?? '').matchAll(/([a-zA-Z_]+)=(?:"([^"]*)"|([^\s,]+))/g)) out[m[1]] = m[2] ?? m[3];
  return out;
}

/** POSTs a stateless tools/call echo to the MCP endpoint with `token`. */
async function callEcho(resource, token) {
  const res = await fetchT(resource, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'negative' } },
    }),
  });
  const text = await res.text();
  const www = res.headers.get('www-authenticate') ?? undefined;
  return { status: res.status, www, error: challengeParams(www).error, ok: res.status === 200 && text.includes('negative') };
}

const describe = (r) => `HTTP ${r.status}${r.www ? ` WWW-Authenticate: ${r.www}` : ''}`;
const expectInvalid = (name, r) => c.ok(name, r.status === 401 && r.error === 'invalid_token', describe(r));

// --- the scenarios ------------------------------------------------------------------------
async function main() {
  let help = '';
  try {
    help = execFileSync(DEMO, ['--help'], { timeout: 10_000 }).toString();
  } catch (err) {
    c.ok('demo binary runs', false, `${DEMO}: ${err.message} (build it with cargo build --example demo)`);
    return;
  }
  const hasLeeway = /--leeway\b/.test(help);
  const hasCacheTtl = /--introspection-cache-ttl\b/.test(help);
  const leeway = hasLeeway ? FAST_LEEWAY_S : DEFAULT_LEEWAY_S;
  const cacheTtl = hasCacheTtl ? FAST_CACHE_TTL_S : DEFAULT_CACHE_TTL_S;
  c.info('demo flags', `--leeway ${hasLeeway ? `supported (using ${leeway}s)` : `absent (default ${leeway}s)`}, `
    + `--introspection-cache-ttl ${hasCacheTtl ? `supported (using ${cacheTtl}s)` : `absent (default ${cacheTtl}s)`}`);

  const [as, asShort] = await Promise.all([startAs(), startAs(['--access-token-ttl', '2'])]);
  const hasIntrospectJwts = /--introspect-jwts\b/.test(help);
  const introspectionArgs = [
    '--introspection-url', `${as.issuer}/token/introspection`,
    '--client-id', as.introspection_client_id, '--client-secret', as.introspection_client_secret,
  ];
  const [jwtDemo, shortDemo, opaqueDemo, introspectJwtsDemo] = await Promise.all([
    startDemo('A (JWT)', { issuer: as.issuer }),
    startDemo('B (JWT, AS with 2 s tokens)', {
      issuer: asShort.issuer, extra: hasLeeway ? ['--leeway', String(leeway)] : [],
    }),
    startDemo('C (introspection)', {
      resourcePath: '/opaque-mcp',
      issuer: as.issuer,
      extra: [
        '--introspection-url', `${as.issuer}/token/introspection`,
        '--client-id', as.introspection_client_id, '--client-secret', as.introspection_client_secret,
        ...(hasCacheTtl ? ['--introspection-cache-ttl', String(cacheTtl)] : []),
      ],
    }),
    hasIntrospectJwts
      ? startDemo('D (introspection of foreign JWTs)', {
        resourcePath: '/opaque-mcp',
        issuer: as.issuer,
        extra: [...introspectionArgs, '--introspect-jwts'],
      })
      : undefined,
  ]);
  const late = []; // checks that must wait: { at, run }

  // A. audience and malformed tokens.
  {
    const own = await getToken(as.issuer, jwtDemo);
    const r0 = await callEcho(jwtDemo, own.access_token);
    c.ok('A control: JWT for the demo\'s own resource -> 200', r0.ok, describe(r0));
    const other = `${new URL(jwtDemo).origin}/other`;
    const t = await getToken(as.issuer, other);
    const aud = isJwt(t.access_token) ? decodeJwt(t.access_token).payload.aud : undefined;
    c.info('A token for another resource', `aud=${JSON.stringify(aud)} (the demo's resource is ${jwtDemo})`);
    expectInvalid('A: JWT for another resource (aud mismatch) -> 401 invalid_token', await callEcho(jwtDemo, t.access_token));
    expectInvalid('A: malformed bearer token -> 401 invalid_token', await callEcho(jwtDemo, 'not-a-token'));
  }

  // B. expired JWT.
  {
    const t = await getToken(asShort.issuer, shortDemo);
    const { exp } = decodeJwt(t.access_token).payload;
    const r0 = await callEcho(shortDemo, t.access_token);
    c.ok('B control: 2 s JWT used at once -> 200', r0.ok, `${describe(r0)} expires_in=${t.expires_in}`);
    const name = `B: expired JWT (exp + leeway ${leeway}s passed) -> 401 invalid_token`;
    if (hasLeeway || args.slow) {
      late.push({
        at: exp * 1000 + leeway * 1000 + MARGIN_MS,
        run: async () => expectInvalid(name, await callEcho(shortDemo, t.access_token)),
      });
    } else {
      c.skip(name, `the demo's JWT leeway is ${DEFAULT_LEEWAY_S}s; needs demo flag --leeway SECS (or run negative.mjs --slow to wait ~${DEFAULT_LEEWAY_S + 3}s)`);
    }
  }

  // C. introspected opaque tokens: other resource, revoked.
  {
    const t = await getToken(as.issuer, opaqueDemo);
    c.info('C token', `opaque=${!isJwt(t.access_token)} scope=${t.scope}`);
    const firstUse = Date.now();
    const r0 = await callEcho(opaqueDemo, t.access_token);
    c.ok('C control: opaque token for the demo\'s resource -> 200 (introspected)', r0.ok, describe(r0));
    const otherOpaque = `${new URL(opaqueDemo).origin}/other/opaque-mcp`;
    const o = await getToken(as.issuer, otherOpaque);
    expectInvalid('C: opaque token for another resource (introspection aud mismatch) -> 401 invalid_token',
      await callEcho(opaqueDemo, o.access_token));

    const rv = await revoke(t.meta.revocation_endpoint, t.access_token, { clientId: t.clientId }, 'access_token');
    c.ok('C: token revoked at the AS (RFC 7009)', rv.status === 200, `HTTP ${rv.status} ${rv.json?.error ?? ''}`);
    const r1 = await callEcho(opaqueDemo, t.access_token);
    c.info('C revoked token right after revocation', `${describe(r1)} (an active answer is cached for ${cacheTtl}s, as documented)`);
    const name = `C: revoked opaque token after the introspection cache TTL (${cacheTtl}s) -> 401 invalid_token`;
    if (hasCacheTtl || args.slow) {
      late.push({
        at: firstUse + cacheTtl * 1000 + MARGIN_MS,
        run: async () => expectInvalid(name, await callEcho(opaqueDemo, t.access_token)),
      });
    } else {
      c.skip(name, `the demo's introspection cache TTL is ${DEFAULT_CACHE_TTL_S}s; needs demo flag --introspection-cache-ttl SECS (or run negative.mjs --slow to wait ~${DEFAULT_CACHE_TTL_S + 2}s)`);
    }
  }

  // D. a JWT of another issuer (asShort) at the introspecting demos.
  {
    // A JWT (the AS issues JWTs for /mcp resources), of an issuer the introspecting demos do not trust.
    const foreign = await getToken(asShort.issuer, shortDemo);
    c.ok('D: the foreign token is a JWT', isJwt(foreign.access_token), `iss=${asShort.issuer}`);
    for (let i = 0; i < 3; i += 1) {
      expectInvalid(`D: JWT of an untrusted issuer, refused locally (request ${i + 1}) -> 401 invalid_token`,
        await callEcho(opaqueDemo, foreign.access_token));
    }
    if (introspectJwtsDemo) {
      for (let i = 0; i < 2; i += 1) {
        expectInvalid(`D: with --introspect-jwts the AS refuses the foreign JWT (request ${i + 1}) -> 401 invalid_token`,
          await callEcho(introspectJwtsDemo, foreign.access_token));
      }
    } else {
      c.skip('D: --introspect-jwts', 'the demo has no --introspect-jwts flag');
    }
  }

  late.sort((x, y) => x.at - y.at);
  if (late.length) c.info('waiting', `${Math.max(0, Math.round((late.at(-1).at - Date.now()) / 1000))}s for expiry / cache TTL`);
  for (const { at, run } of late) {
    await sleep(Math.max(0, at - Date.now()));
    await run();
  }
}

let code = 1;
try {
  await main();
} catch (err) {
  c.ok('negative cases ran to completion', false, err?.message ?? String(err));
} finally {
  await cleanup();
  code = c.summary();
}
process.exit(code);
