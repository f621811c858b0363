// Shared helpers for the interop scripts: bounded fetch, a tiny cookie jar, PKCE,
// following an authorization request through oidc-provider's auto-approving
// interaction with plain HTTP, token/introspection/revocation calls, JWT
// decoding/verification with node:crypto, and spawning as.mjs.
//
// Nothing here prints token values. Callers must not either.

import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const HERE = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const DEFAULT_TIMEOUT_MS = 10_000;

/** fetch with an AbortSignal.timeout bound (unless the caller passes its own signal). */
export function fetchT(url, init = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return fetch(url, { signal: AbortSignal.timeout(timeoutMs), ...init });
}

/** Wraps any fetch function so every call is time-bounded. */
export function boundedFetch(baseFetch = fetch, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return (url, init = {}) => {
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (init.signal) signals.push(init.signal);
    return baseFetch(url, { ...init, signal: AbortSignal.any(signals) });
  };
}

// ---------------------------------------------------------------------------
// Cookie jar (just enough for oidc-provider: name, value, Path, Max-Age/Expires)
// ---------------------------------------------------------------------------

export class CookieJar {
  #cookies = new Map(); // key `${host}|${path}|${name}` -> { host, path, name, value, expires }

  /** Store every Set-Cookie of `response`, which answered a request to `url`. */
  capture(url, response) {
    const u = new URL(url);
    const lines = typeof response.headers.getSetCookie === 'function'
      ? response.headers.getSetCookie()
      : [];
    for (const line of lines) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let cpath = '/';
      let expires;
      for (const attr of attrs) {
        const [k, ...rest] = attr.split('=');
        const key = k.trim().toLowerCase();
        const v = rest.join('=').trim();
        if (key === 'path' && v.startsWith('/')) cpath = v;
        else if (key === 'max-age') expires = Date.now() + Number(v) * 1000;
        else if (key === 'expires' && expires === undefined) {
          const t = Date.parse(v);
          if (!Number.isNaN(t)) expires = t;
        }
      }
      const key = `${u.host}|${cpath}|${name}`;
      if (expires !== undefined && expires <= Date.now()) this.#cookies.delete(key);
      else this.#cookies.set(key, { host: u.host, path: cpath, name, value, expires });
    }
  }

  /** The Cookie header value for a request to `url`, or undefined. */
  header(url) {
    const u = new URL(url);
    const now = Date.now();
    const out = [];
    for (const [key, c] of this.#cookies) {
      if (c.expires !== undefined && c.expires <= now) { this.#cookies.delete(key); continue; }
      if (c.host !== u.host) continue;
      const p = u.pathname;
      const matches = p === c.path
        || (p.startsWith(c.path) && (c.path.endsWith('/') || p[c.path.length] === '/'));
      if (matches) out.push(`${c.name}=${c.value}`);
    }
    return out.length ? out.join('; ') : undefined;
  }

  get size() { return this.#cookies.size; }
}

// ---------------------------------------------------------------------------
// PKCE
// ---------------------------------------------------------------------------

export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

export function pkcePair() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  return { verifier, challenge, method: 'S256' };
}

// ---------------------------------------------------------------------------
// Authorization: follow redirects with a cookie jar until the redirect URI
// ---------------------------------------------------------------------------

/** Decodes the few HTML entities an attribute value may carry. */
function htmlDecode(s) {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]);
}

/**
 * A consent page (e.g. bearer-guard's development authorization server): the
 * first `<form method="post">` of `html`, with its hidden inputs and the
 * submit button whose value means yes (allow/approve/accept) — what a user
 * clicking it would send. `null` when there is no such form.
 */
export function consentForm(html, pageUrl) {
  const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!form || !/method\s*=\s*"post"/i.test(form[1])) return null;
  const attr = (tag, name) => {
    const m = tag.match(new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i'));
    return m ? htmlDecode(m[1]) : undefined;
  };
  const fields = new URLSearchParams();
  for (const [input] of form[2].matchAll(/<input\b[^>]*>/gi)) {
    if ((attr(input, 'type') ?? '').toLowerCase() === 'hidden' && attr(input, 'name')) {
      fields.append(attr(input, 'name'), attr(input, 'value') ?? '');
    }
  }
  const yes = [...form[2].matchAll(/<button\b[^>]*>/gi)].map(([b]) => b)
    .find((b) => /^(allow|approve|accept|yes)$/i.test(attr(b, 'value') ?? ''));
  if (!yes) return null;
  if (attr(yes, 'name')) fields.append(attr(yes, 'name'), attr(yes, 'value'));
  return { action: new URL(attr(form[1], 'action') ?? pageUrl, pageUrl).href, fields };
}

/**
 * GETs `authorizationUrl` and follows every redirect manually (carrying cookies
 * in `jar`) until a Location starts with `redirectUri`; a consent page on the
 * way (see consentForm) is answered "allow", as a user would. Returns
 * `{ params: URLSearchParams of the final redirect, hops: [{status, path}] }`.
 * `hops` holds only status + URL path (no query), so it is safe to print.
 */
export async function followAuthorization(authorizationUrl, redirectUri, {
  jar = new CookieJar(), maxHops = 12, timeoutMs = DEFAULT_TIMEOUT_MS,
} = {}) {
  let url = String(authorizationUrl);
  let post; // the consent answer to send instead of a GET
  const hops = [];
  for (let i = 0; i < maxHops; i += 1) {
    const headers = {};
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    const init = { redirect: 'manual', headers };
    if (post) {
      init.method = 'POST';
      init.body = post;
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetchT(url, init, timeoutMs);
    jar.capture(url, res);
    hops.push({ status: res.status, path: `${post ? 'POST ' : ''}${new URL(url).pathname}` });
    post = undefined;
    const location = res.headers.get('location');
    if (res.status === 200 && /text\/html/.test(res.headers.get('content-type') ?? '')) {
      const html = await res.text();
      const consent = consentForm(html, url);
      if (consent) {
        url = consent.action;
        post = consent.fields.toString();
        continue;
      }
      const snippet = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
      throw new Error(`authorization stopped at HTTP 200 on ${new URL(url).pathname}: ${snippet}`);
    }
    if (![301, 302, 303, 307, 308].includes(res.status) || !location) {
      const body = await res.text().catch(() => '');
      const snippet = body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
      throw new Error(`authorization stopped at HTTP ${res.status} on ${new URL(url).pathname}: ${snippet}`);
    }
    await res.body?.cancel();
    const next = new URL(location, url).href;
    if (next.startsWith(String(redirectUri))) {
      return { params: new URL(next).searchParams, hops, redirect: next };
    }
    url = next;
  }
  throw new Error(`authorization did not reach the redirect URI within ${maxHops} hops`);
}

/** Builds an authorization URL. `extra` values that are undefined are skipped. */
export function authorizationUrl(endpoint, params) {
  const u = new URL(endpoint);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else u.searchParams.set(k, v);
  }
  return u;
}

// ---------------------------------------------------------------------------
// AS endpoints
// ---------------------------------------------------------------------------

export async function getJson(url, init = {}) {
  const res = await fetchT(url, { headers: { accept: 'application/json' }, ...init });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

export async function discover(issuer) {
  const r = await getJson(`${issuer}/.well-known/oauth-authorization-server`);
  if (r.status !== 200) throw new Error(`AS metadata: HTTP ${r.status}`);
  return r.json;
}

export async function registerClient(registrationEndpoint, metadata) {
  return getJson(registrationEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(metadata),
  });
}

function basic(id, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** POST a form to the token endpoint. `auth` = {clientId} (public) or {clientId, clientSecret} (basic). */
export async function tokenRequest(tokenEndpoint, form, auth) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) v.forEach((x) => body.append(k, x)); else body.set(k, v);
  }
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (auth?.clientSecret) headers.authorization = basic(auth.clientId, auth.clientSecret);
  else if (auth?.clientId) body.set('client_id', auth.clientId);
  return getJson(tokenEndpoint, { method: 'POST', headers, body });
}

export const introspect = (endpoint, token, auth, hint) => tokenRequest(
  endpoint, { token, token_type_hint: hint }, auth,
);
export const revoke = (endpoint, token, auth, hint) => tokenRequest(
  endpoint, { token, token_type_hint: hint }, auth,
);

/**
 * Full authorization code + PKCE flow for an already registered public client.
 * Returns { tokenResponse, authParams, hops, sentAuthorization }.
 */
export async function codeFlow({
  meta, clientId, redirectUri, scope, resource, jar, prompt, tokenResource = resource,
}) {
  const pkce = pkcePair();
  const state = b64url(randomBytes(12));
  const url = authorizationUrl(meta.authorization_endpoint, {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    resource,
    state,
    prompt,
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
  });
  const { params, hops } = await followAuthorization(url, redirectUri, { jar });
  if (params.get('error')) {
    throw new Error(`authorization error: ${params.get('error')} ${params.get('error_description') ?? ''}`);
  }
  if (params.get('state') !== state) throw new Error('state mismatch');
  const code = params.get('code');
  if (!code) throw new Error('no code in redirect');
  const tokenResponse = await tokenRequest(meta.token_endpoint, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: pkce.verifier,
    resource: tokenResource,
  }, { clientId });
  return { tokenResponse, authParams: params, hops };
}

// ---------------------------------------------------------------------------
// JWT
// ---------------------------------------------------------------------------

export function isJwt(token) {
  return typeof token === 'string' && /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);
}

export function decodeJwt(token) {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
  };
}

const ALGS = {
  RS256: { hash: 'sha256' },
  PS256: { hash: 'sha256', padding: 'pss' },
  ES256: { hash: 'sha256', dsaEncoding: 'ieee-p1363' },
  ES384: { hash: 'sha384', dsaEncoding: 'ieee-p1363' },
};

/**
 * Verifies a JWS compact token against a JWKS with node:crypto. Only the algs
 * in ALGS are accepted (never `none`/HS*). Returns { header, payload } or throws.
 */
export function verifyJwt(token, jwks, { allowedAlgs = ['RS256', 'ES256'] } = {}) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a JWS compact serialization');
  const { header, payload } = decodeJwt(token);
  if (!allowedAlgs.includes(header.alg) || !ALGS[header.alg]) throw new Error(`alg ${header.alg} not allowed`);
  const candidates = jwks.keys.filter((k) => (header.kid === undefined || k.kid === header.kid)
    && (k.alg === undefined || k.alg === header.alg) && (k.use === undefined || k.use === 'sig'));
  if (!candidates.length) throw new Error(`no key for kid ${header.kid}`);
  const spec = ALGS[header.alg];
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  for (const jwk of candidates) {
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    const opts = { key };
    if (spec.dsaEncoding) opts.dsaEncoding = spec.dsaEncoding;
    if (spec.padding === 'pss') { opts.padding = 6; opts.saltLength = 32; }
    if (cryptoVerify(spec.hash, data, opts, sig)) return { header, payload, key: jwk };
  }
  throw new Error('signature verification failed');
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/**
 * Spawns `node script args...` and resolves with { child, ready } once it prints
 * one JSON line on stdout. stderr is passed through with a prefix unless quiet.
 * The authorization server is usually ready in under 0.5 s; the 60 s bound only
 * says when to give up (one CI run saw it stall past the former 15 s bound).
 */
export function spawnReady(script, args = [], { timeoutMs = 60_000, prefix, quiet = false, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const tag = prefix ?? path.basename(script);
    // Quiet children's stderr is kept (last 40 lines) and shown if the child never gets ready.
    const kept = [];
    const keep = (line) => { kept.push(line); if (kept.length > 40) kept.shift(); };
    const lastWords = () => (kept.length ? `; its stderr:\n${kept.map((l) => `  [${tag}] ${l}`).join('\n')}` : '; no stderr');
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`${tag}: no ready line within ${timeoutMs} ms${lastWords()}`));
    }, timeoutMs);
    const rl = createInterface({ input: child.stdout });
    let done = false;
    rl.on('line', (line) => {
      if (done) { if (!quiet) process.stderr.write(`[${tag}] ${line}\n`); return; }
      try {
        const ready = JSON.parse(line);
        done = true;
        clearTimeout(timer);
        resolve({ child, ready });
      } catch {
        if (!quiet) process.stderr.write(`[${tag}] ${line}\n`);
      }
    });
    const rlErr = createInterface({ input: child.stderr });
    rlErr.on('line', (line) => {
      if (!quiet) process.stderr.write(`[${tag}] ${line}\n`);
      else if (!done) keep(line);
    });
    child.on('exit', (code, signal) => {
      if (!done) {
        clearTimeout(timer);
        reject(new Error(`${tag} exited early (code ${code}, signal ${signal})${lastWords()}`));
      }
    });
  });
}

/**
 * Spawns `cmd args` in its own process group (so a server started through a
 * wrapper such as `cargo run` can be stopped with its children). When env
 * INTEROP_PIDFILE is set (run.sh sets it), the group id is appended to that
 * file, so run.sh can still end the group if this script is killed outright.
 */
export function spawnGroup(cmd, args, options = {}) {
  const child = spawn(cmd, args, { ...options, detached: true });
  if (process.env.INTEROP_PIDFILE && child.pid) {
    try { appendFileSync(process.env.INTEROP_PIDFILE, `${child.pid}\n`); } catch { /* best effort */ }
  }
  return child;
}

/** Removes `pid` from INTEROP_PIDFILE once its group is gone (so a reused pid is never signalled). */
function forgetGroup(pid) {
  const file = process.env.INTEROP_PIDFILE;
  if (!file || !pid) return;
  try {
    const kept = readFileSync(file, 'utf8').split('\n').filter((l) => l && l !== String(pid));
    writeFileSync(file, kept.map((l) => `${l}\n`).join(''));
  } catch { /* best effort */ }
}

/** SIGTERM to the process group of `child` (from spawnGroup), bounded wait, SIGKILL as a last resort. */
export async function stopGroup(child, timeoutMs = 5_000) {
  if (!child) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    await exited;
    clearTimeout(t);
  }
  forgetGroup(child.pid);
}

/** On SIGTERM/SIGINT/SIGHUP (e.g. from `timeout`): run `cleanup` once, then exit 128+signal. */
export function cleanupOnSignals(cleanup) {
  let running = false;
  for (const [sig, num] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGHUP', 1]]) {
    process.on(sig, async () => {
      if (running) return;
      running = true;
      console.log(`INFO ${sig} received - stopping the processes this script started`);
      try { await cleanup(); } finally { process.exit(128 + num); }
    });
  }
}

/** Sends SIGTERM and waits (bounded) for exit; SIGKILL as a last resort. */
export async function stopChild(child, timeoutMs = 5_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------

export class Checks {
  passed = 0;

  failed = 0;

  ok(name, cond, detail = '') {
    if (cond) this.passed += 1; else this.failed += 1;
    console.log(`${cond ? 'PASS' : 'FAIL'} ${name}${detail ? ` - ${detail}` : ''}`);
    return !!cond;
  }

  info(name, detail = '') {
    console.log(`INFO ${name}${detail ? ` - ${detail}` : ''}`);
  }

  /** Runs fn; a thrown error counts as a failure of `name`. Returns fn's value or undefined. */
  async step(name, fn) {
    try {
      return await fn();
    } catch (err) {
      this.ok(name, false, `threw: ${err?.message ?? err}`);
      return undefined;
    }
  }

  summary() {
    console.log(`${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 ? 0 : 1;
  }
}

export function parseArgs(argv, spec) {
  // spec: { name: 'string' | 'number' | 'boolean' }
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    let [k, v] = a.slice(2).split(/=(.*)/s, 2);
    if (!(k in spec)) throw new Error(`unknown option --${k}`);
    if (spec[k] === 'boolean') { out[k] = v === undefined ? true : v !== 'false'; continue; }
    if (v === undefined) { v = argv[i + 1]; i += 1; }
    if (v === undefined) throw new Error(`--${k} needs a value`);
    out[k] = spec[k] === 'number' ? Number(v) : v;
  }
  return out;
}
