#!/usr/bin/env node
// The official MCP TypeScript SDK client, end to end against an MCP server
// guarded by bearer-guard (the rmcp demo server), with a real AS (as.mjs)
// behind it and no browser.
//
//   node mcp-client-ts.mjs --server http://127.0.0.1:PORT/mcp [--timeout 90]
//
// The SDK does all the OAuth work (401 -> WWW-Authenticate -> RFC 9728 PRM ->
// RFC 8414 AS metadata -> DCR -> authorization code + PKCE + RFC 8707 resource
// -> token); this script only supplies an in-memory OAuthClientProvider whose
// redirectToAuthorization() follows the authorization URL with fetch and a
// cookie jar through as.mjs's auto-approving interaction and captures `code`.
// Every HTTP exchange made by the SDK goes through a recording, time-bounded
// fetch so each step can be checked. Token values are never printed.
//
// Prints one line per step and `N passed, M failed`; exit 1 on any failure.

import { randomBytes } from 'node:crypto';
import net from 'node:net';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  Checks, CookieJar, decodeJwt, followAuthorization, isJwt, parseArgs,
} from './lib/flow.mjs';

const args = parseArgs(process.argv.slice(2), { server: 'string', timeout: 'number', verbose: 'boolean' });
if (!args.server) {
  console.error('usage: node mcp-client-ts.mjs --server http://127.0.0.1:PORT/mcp');
  process.exit(2);
}
const SERVER_URL = new URL(args.server);
// as.mjs issues opaque tokens for resources whose path ends in /opaque-mcp
// (the server under test must then validate them by introspection).
const OPAQUE = SERVER_URL.pathname.endsWith('/opaque-mcp');
const OVERALL_TIMEOUT_MS = (args.timeout ?? 90) * 1000;
const REQUEST_TIMEOUT_MS = 15_000;
const SSE_TIMEOUT_MS = OVERALL_TIMEOUT_MS; // long-lived GET streams

const c = new Checks();
const watchdog = setTimeout(() => {
  c.ok('finished within the overall timeout', false, `${OVERALL_TIMEOUT_MS / 1000}s`);
  process.exit(c.summary());
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

// --- recording fetch --------------------------------------------------------
/** Every exchange the SDK makes. Bodies are kept only where they hold no secret. */
const rec = [];
const vlog = (...a) => { if (args.verbose) process.stderr.write(`[client] ${a.join(' ')}\n`); };

function summarizeForm(body) {
  const p = body instanceof URLSearchParams ? body : new URLSearchParams(String(body));
  return {
    names: [...new Set(p.keys())].sort(),
    grant_type: p.get('grant_type'),
    resource: p.getAll('resource'),
    scope: p.get('scope'),
  };
}

function tokenSummary(json) {
  if (!json) return undefined;
  const s = {
    token_type: json.token_type,
    expires_in: json.expires_in,
    scope: json.scope,
    has_refresh_token: typeof json.refresh_token === 'string',
    access_token_is_jwt: isJwt(json.access_token),
  };
  if (s.access_token_is_jwt) {
    const { header, payload } = decodeJwt(json.access_token);
    Object.assign(s, { typ: header.typ, alg: header.alg, aud: payload.aud, jwt_scope: payload.scope, iss: payload.iss });
  }
  return s;
}

async function recordingFetch(input, init = {}) {
  const url = String(input instanceof Request ? input.url : input);
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  const isSse = method === 'GET' && /text\/event-stream/.test(headers.get('accept') ?? '');
  const signals = [AbortSignal.timeout(isSse ? SSE_TIMEOUT_MS : REQUEST_TIMEOUT_MS)];
  if (init.signal) signals.push(init.signal);
  const entry = {
    i: rec.length, method, url, hasAuthorization: headers.has('authorization'),
  };
  rec.push(entry);
  const ct = headers.get('content-type') ?? '';
  if (init.body !== undefined && /x-www-form-urlencoded/.test(ct)) entry.form = summarizeForm(init.body);
  if (init.body !== undefined && /json/.test(ct)) {
    try {
      const j = JSON.parse(String(init.body));
      const msgs = Array.isArray(j) ? j : [j];
      if (msgs.every((m) => m?.jsonrpc === '2.0')) {
        entry.jsonrpc = msgs.map((m) => m.method ?? 'response');
        entry.tool = msgs.find((m) => m.method === 'tools/call')?.params?.name;
      } else {
        entry.registration = j; // DCR metadata: no secrets
      }
    } catch { /* not JSON */ }
  }
  const res = await fetch(input, { ...init, signal: AbortSignal.any(signals) });
  entry.status = res.status;
  entry.wwwAuthenticate = res.headers.get('www-authenticate') ?? undefined;
  const rct = res.headers.get('content-type') ?? '';
  if (/json/.test(rct) && !entry.jsonrpc) {
    try {
      const j = await res.clone().json();
      if (entry.form?.grant_type) entry.token = tokenSummary(j);
      else entry.json = j; // metadata / registration response (public client: no secret)
      if (j?.error) entry.error = j.error;
    } catch { /* ignore */ }
  }
  vlog(method, url, '->', res.status, entry.wwwAuthenticate ?? '');
  return res;
}

// --- in-memory OAuthClientProvider -----------------------------------------
async function unusedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

class InteropOAuthProvider {
  #clientInformation;

  #tokens;

  #codeVerifier;

  #state;

  jar = new CookieJar(); // the "browser": keeps the AS session between authorizations

  authorizations = []; // one entry per redirectToAuthorization

  pendingCode;

  constructor(redirectUrl) {
    this._redirectUrl = redirectUrl;
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: 'bearer-guard interop (MCP TS SDK)',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.#state = randomBytes(16).toString('base64url');
    return this.#state;
  }

  clientInformation() { return this.#clientInformation; }

  saveClientInformation(info) { this.#clientInformation = info; }

  tokens() { return this.#tokens; }

  saveTokens(tokens) { this.#tokens = tokens; }

  saveCodeVerifier(v) { this.#codeVerifier = v; }

  codeVerifier() {
    if (!this.#codeVerifier) throw new Error('no code verifier saved');
    return this.#codeVerifier;
  }

  invalidateCredentials(scope) {
    vlog('invalidateCredentials', scope);
    if (scope === 'all' || scope === 'client') this.#clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this.#tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.#codeVerifier = undefined;
  }

  async redirectToAuthorization(authorizationUrl) {
    const u = new URL(authorizationUrl);
    const entry = {
      recIndex: rec.length,
      endpoint: `${u.origin}${u.pathname}`,
      scope: u.searchParams.get('scope'),
      resource: u.searchParams.getAll('resource'),
      code_challenge_method: u.searchParams.get('code_challenge_method'),
      has_code_challenge: !!u.searchParams.get('code_challenge'),
      prompt: u.searchParams.get('prompt'),
      redirect_uri: u.searchParams.get('redirect_uri'),
    };
    this.authorizations.push(entry);
    try {
      const { params, hops } = await followAuthorization(u, this._redirectUrl, { jar: this.jar, timeoutMs: REQUEST_TIMEOUT_MS });
      entry.hops = hops.map((h) => `${h.status} ${h.path.replace(/\/[\w-]{20,}$/, '/:uid')}`);
      entry.error = params.get('error') ?? undefined;
      entry.error_description = params.get('error_description') ?? undefined;
      entry.stateOk = params.get('state') === this.#state;
      entry.iss = params.get('iss') ?? undefined;
      entry.gotCode = !!params.get('code');
      this.pendingCode = params.get('code') ?? undefined;
    } catch (err) {
      entry.error = `follow failed: ${err.message}`;
      this.pendingCode = undefined;
    }
  }

  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    if (!code) throw new Error('no authorization code captured');
    return code;
  }
}

// --- helpers ------------------------------------------------------------------
const newTransport = (provider) => new StreamableHTTPClientTransport(SERVER_URL, {
  authProvider: provider,
  fetch: recordingFetch,
});

function parseChallenge(header) {
  const out = {};
  if (!header) return out;
  for (const m of header.matchAll(/([a-zA-Z_]+)=(?:"([^"]*)"|([^\s,]+))/g)) out[m[1]] = m[2] ?? m[3];
  return out;
}

const sameUrl = (a, b) => { try { return new URL(a).href === new URL(b).href; } catch { return false; } };

/**
 * Runs `fn` (an MCP call on `client`). On UnauthorizedError (the SDK started a
 * new authorization: 401 or 403 step-up) completes it with transport.finishAuth
 * and retries, at most `max` times. Returns { result, reauths }.
 */
async function withStepUp(provider, transport, fn, max = 2) {
  let reauths = 0;
  for (;;) {
    try {
      return { result: await fn(), reauths };
    } catch (err) {
      if (!(err instanceof UnauthorizedError) || reauths >= max) throw err;
      reauths += 1;
      await transport.finishAuth(provider.takeCode());
    }
  }
}

function textOf(result) {
  return (result?.content ?? []).filter((x) => x.type === 'text').map((x) => x.text).join('');
}

// --- the flow -----------------------------------------------------------------
async function main() {
  const redirectUrl = `http://localhost:${await unusedPort()}/callback`;
  const provider = new InteropOAuthProvider(redirectUrl);
  const client = new Client({ name: 'bearer-guard-interop-ts', version: '0.0.0' }, { capabilities: {} });

  // 1) connect -> 401 -> the SDK discovers, registers and redirects.
  let transport = newTransport(provider);
  let firstError;
  try {
    await client.connect(transport);
  } catch (err) {
    firstError = err;
  }
  c.ok('connect without a token ends in UnauthorizedError (SDK started authorization)', firstError instanceof UnauthorizedError,
    firstError ? `${firstError.constructor.name}: ${firstError.message}` : 'connected without auth?!');
  if (!(firstError instanceof UnauthorizedError)) return;

  const first401 = rec.find((e) => e.method === 'POST' && sameUrl(e.url, SERVER_URL) && e.status === 401);
  const ch = parseChallenge(first401?.wwwAuthenticate);
  c.ok('401 received with WWW-Authenticate: Bearer resource_metadata=..., scope=...',
    !!first401 && /^Bearer\s/i.test(first401.wwwAuthenticate ?? '') && !!ch.resource_metadata,
    first401 ? `WWW-Authenticate: ${first401.wwwAuthenticate}` : 'no 401 seen');
  c.ok('401 without a token carries no error code (RFC 6750 §3.1)', first401 && ch.error === undefined, `error=${ch.error}`);

  const prmGet = rec.find((e) => e.method === 'GET' && ch.resource_metadata && sameUrl(e.url, ch.resource_metadata));
  c.ok('resource_metadata followed (SDK fetched exactly the advertised PRM URL)', !!prmGet,
    prmGet ? prmGet.url : `PRM fetches: ${rec.filter((e) => /oauth-protected-resource/.test(e.url)).map((e) => e.url).join(', ') || 'none'}`);
  const prm = prmGet?.json;
  c.ok('PRM fetched: 200, resource = server URL, authorization_servers non-empty',
    prmGet?.status === 200 && prm?.resource === args.server
      && Array.isArray(prm?.authorization_servers) && prm.authorization_servers.length > 0,
    prm ? `resource=${prm.resource} authorization_servers=${JSON.stringify(prm.authorization_servers)} scopes_supported=${JSON.stringify(prm.scopes_supported)}` : `HTTP ${prmGet?.status}`);
  const issuer = prm?.authorization_servers?.[0];

  const asMetaGet = rec.find((e) => e.method === 'GET' && e.status === 200 && e.json?.issuer
    && /\/\.well-known\/(oauth-authorization-server|openid-configuration)/.test(e.url));
  const asMeta = asMetaGet?.json;
  c.ok('AS metadata fetched (RFC 8414 path first), issuer matches PRM',
    !!asMeta && asMeta.issuer === issuer && /oauth-authorization-server/.test(asMetaGet.url),
    asMetaGet ? `${asMetaGet.url} issuer=${asMeta.issuer}` : 'none');

  const regPost = rec.find((e) => e.method === 'POST' && asMeta && sameUrl(e.url, asMeta.registration_endpoint));
  c.ok('dynamic client registration 201 (public client, loopback redirect)', regPost?.status === 201 && !!regPost.json?.client_id,
    regPost ? `HTTP ${regPost.status} sent=${JSON.stringify({ ...regPost.registration, client_name: undefined })} ${regPost.json?.error ?? ''} ${regPost.json?.error_description ?? ''}` : 'no registration request');

  const a1 = provider.authorizations[0];
  c.ok('authorization: S256 PKCE, scope from the challenge, resource = PRM resource, code returned',
    !!a1 && a1.code_challenge_method === 'S256' && a1.has_code_challenge && a1.scope === ch.scope
      && a1.resource.length === 1 && a1.resource[0] === prm?.resource && a1.gotCode && a1.stateOk && !a1.error,
    a1 ? `scope=${a1.scope} resource=${JSON.stringify(a1.resource)} iss=${a1.iss} hops=${a1.hops?.join(' -> ')} ${a1.error ?? ''} ${a1.error_description ?? ''}` : 'redirectToAuthorization not called');

  // 2) finishAuth: code -> token (the SDK adds resource), then reconnect.
  let finishErr;
  try {
    await transport.finishAuth(provider.takeCode());
  } catch (err) { finishErr = err; }
  const tok1 = rec.find((e) => e.method === 'POST' && asMeta && sameUrl(e.url, asMeta.token_endpoint) && e.form?.grant_type === 'authorization_code');
  c.ok('token: authorization_code grant 200, request carried resource + code_verifier',
    !finishErr && tok1?.status === 200 && tok1.form.resource.length === 1 && tok1.form.resource[0] === prm?.resource
      && tok1.form.names.includes('code_verifier'),
    tok1 ? `HTTP ${tok1.status} params=${tok1.form.names.join(',')} resource=${JSON.stringify(tok1.form.resource)} ${tok1.error ?? ''}` : `no token request ${finishErr?.message ?? ''}`);
  const t1 = tok1?.token;
  if (OPAQUE) {
    c.ok('access token: opaque (as.mjs rule for */opaque-mcp), scope = challenge scope',
      t1 && !t1.access_token_is_jwt && t1.scope === ch.scope,
      t1 ? `scope=${t1.scope} refresh_token=${t1.has_refresh_token}` : 'none');
  } else {
    c.ok('access token: JWT typ at+jwt, aud = resource, scope = challenge scope',
      t1?.access_token_is_jwt && t1.typ === 'at+jwt' && t1.aud === prm?.resource && t1.jwt_scope === ch.scope,
      t1 ? `typ=${t1.typ} alg=${t1.alg} aud=${JSON.stringify(t1.aud)} scope=${t1.jwt_scope} refresh_token=${t1.has_refresh_token}` : 'none');
  }
  if (finishErr) return;

  transport = newTransport(provider);
  const initIndex = rec.length;
  const initOk = await c.step('initialize', async () => { await client.connect(transport); return true; });
  if (!initOk) return;
  const initPost = rec.slice(initIndex).find((e) => e.jsonrpc?.includes('initialize'));
  c.ok('initialize', initPost?.status === 200 && initPost.hasAuthorization && !!client.getServerVersion(),
    `server=${JSON.stringify(client.getServerVersion())} protocol=${transport.protocolVersion ?? '?'}`);

  // 3) tools/list, echo.
  const list = await c.step('tools/list', () => client.listTools());
  if (list) {
    const names = list.tools.map((t) => t.name);
    c.ok('tools/list contains echo and write_note', names.includes('echo') && names.includes('write_note'), names.join(', '));
  }
  const echo = await c.step('tools/call echo', () => client.callTool({ name: 'echo', arguments: { text: 'hello interop' } }));
  if (echo) c.ok('tools/call echo succeeds', !echo.isError && textOf(echo).includes('hello interop'), JSON.stringify(textOf(echo)));

  // 4) write_note with a token lacking mcp:write -> 403 insufficient_scope -> SDK step-up.
  const authsBefore = provider.authorizations.length;
  const recBefore = rec.length;
  const wn = await c.step('tools/call write_note', () => withStepUp(provider, transport,
    () => client.callTool({ name: 'write_note', arguments: { note: 'written after step-up' } })));
  const forbidden = rec.slice(recBefore).find((e) => e.status === 403 && e.tool === 'write_note');
  const fch = parseChallenge(forbidden?.wwwAuthenticate);
  c.ok('write_note with mcp:read only -> 403 error="insufficient_scope" naming mcp:write',
    !!forbidden && fch.error === 'insufficient_scope' && (fch.scope ?? '').split(' ').includes('mcp:write'),
    forbidden ? `WWW-Authenticate: ${forbidden.wwwAuthenticate}` : 'no 403 seen');
  const a2 = provider.authorizations[authsBefore];
  c.ok('SDK step-up: new authorization requesting the challenge scope (with resource)',
    !!a2 && a2.scope === fch.scope && a2.resource[0] === prm?.resource && a2.gotCode && !a2.error,
    a2 ? `scope=${a2.scope} resource=${JSON.stringify(a2.resource)} hops=${a2.hops?.join(' -> ')} ${a2.error ?? ''} ${a2.error_description ?? ''}` : 'no new authorization (did the SDK refresh instead?)');
  const tok2 = rec.slice(recBefore).find((e) => e.form?.grant_type === 'authorization_code');
  const tok2Scope = OPAQUE ? tok2?.token?.scope : tok2?.token?.jwt_scope;
  c.ok(`step-up token has mcp:write${OPAQUE ? '' : ' and aud = resource'}`,
    tok2?.status === 200 && (tok2Scope ?? '').split(' ').includes('mcp:write') && (OPAQUE || tok2.token?.aud === prm?.resource),
    tok2 ? `HTTP ${tok2.status} scope=${tok2Scope} resource=${JSON.stringify(tok2.form.resource)}` : 'no token request');
  const seen403 = rec.slice(recBefore).filter((e) => e.status === 403).map((e) => parseChallenge(e.wwwAuthenticate).scope);
  if (wn) {
    c.ok('tools/call write_note succeeds after step-up', !wn.result.isError && /stored/.test(textOf(wn.result)),
      `${JSON.stringify(textOf(wn.result))} (re-authorizations: ${wn.reauths})`);
  } else if (seen403.length > 1) {
    // Typical cause: the request needs several scopes (e.g. a baseline mcp:read
    // plus mcp:write) but each 403 names only the one the current token lacks;
    // this SDK version REPLACES its scope with the challenge scope (no union),
    // so every step-up drops the scope obtained by the previous one.
    c.info('step-up loop', `403 scope sequence: ${seen403.map((x) => JSON.stringify(x)).join(' -> ')}; `
      + 'the SDK requests exactly the challenge scope each time (no union with earlier scopes), so a server '
      + 'whose 403 omits scopes the request still needs makes it alternate until the retry limit');
  }

  // 5) What the TS SDK does with the token after step-up (information; depends
  //    on whether the server's 403 scope includes already granted scopes).
  const recBefore2 = rec.length;
  const echo2 = await c.step('tools/call echo after step-up', () => withStepUp(provider, transport,
    () => client.callTool({ name: 'echo', arguments: { text: 'still readable' } })));
  if (echo2) {
    c.ok('tools/call echo after step-up succeeds (possibly after another step-up)', !echo2.result.isError && /still readable/.test(textOf(echo2.result)));
    const extra403 = rec.slice(recBefore2).find((e) => e.status === 403);
    c.info('scope after step-up', `write_note token scope=${tok2Scope}; echo needed ${echo2.reauths} more re-authorization(s)${extra403 ? ` (403: ${extra403.wwwAuthenticate})` : ''}`);
  }

  // Sanity: every MCP request after the first authorization carried a token.
  const mcpPostsAfter = rec.filter((e, i) => i > (tok1?.i ?? 0) && e.method === 'POST' && sameUrl(e.url, SERVER_URL));
  c.ok('every MCP POST after authorization carried Authorization', mcpPostsAfter.length > 0 && mcpPostsAfter.every((e) => e.hasAuthorization),
    `${mcpPostsAfter.length} POSTs`);
  c.info('HTTP exchanges', rec.map((e) => `${e.method} ${new URL(e.url).pathname} ${e.status}`).join(' | '));

  await client.close().catch(() => {});
}

let code = 1;
try {
  await main();
} catch (err) {
  c.ok('client flow ran to completion', false, err?.stack ?? String(err));
} finally {
  code = c.summary();
}
process.exit(code);
