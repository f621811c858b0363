#!/usr/bin/env node
// THROWAWAY stand-in for the real demo server (rmcp + bearer-guard), used only
// to develop and smoke-test mcp-client-ts.mjs until that server exists. It is
// NOT the thing under test and does not prove anything about bearer-guard.
//
// Built from the MCP TS SDK's own McpServer + StreamableHTTPServerTransport
// with a tiny hand-written bearer check that mimics what the demo server is
// specified to send:
//   401: WWW-Authenticate: Bearer resource_metadata="http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp", scope="mcp:read"
//   403: WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:write", resource_metadata="..."
//   PRM at /.well-known/oauth-protected-resource/mcp listing the AS issuer.
// Tools: echo (needs mcp:read), write_note (needs mcp:write).
//
//   node dev/mcp-server.mjs --as http://127.0.0.1:ASPORT [--port N] [--include-granted-scopes] [--write-needs-read]
//
// --include-granted-scopes: the 403 `scope` is granted ∪ required (the
// 2025-11-25 style) instead of only the scopes the operation needs.
// --write-needs-read: write_note needs mcp:read AND mcp:write (default: only
// mcp:write; every other request needs mcp:read).
// Ready line on stdout: {"url":"http://127.0.0.1:PORT/mcp","resource_metadata":"..."}

import { randomUUID } from 'node:crypto';
import http from 'node:http';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

import { getJson, parseArgs, verifyJwt } from '../lib/flow.mjs';

const args = parseArgs(process.argv.slice(2), {
  port: 'number', as: 'string', 'include-granted-scopes': 'boolean', 'write-needs-read': 'boolean',
});
if (!args.as) throw new Error('--as ISSUER is required');
const ISSUER = args.as.replace(/\/$/, '');
const log = (...a) => process.stderr.write(`[dev-mcp] ${a.join(' ')}\n`);

const asMeta = (await getJson(`${ISSUER}/.well-known/oauth-authorization-server`)).json;
let jwks = (await getJson(asMeta.jwks_uri)).json;

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(args.port ?? 0, '127.0.0.1', resolve);
});
const ORIGIN = `http://127.0.0.1:${server.address().port}`;
const RESOURCE = `${ORIGIN}/mcp`;
const PRM_URL = `${ORIGIN}/.well-known/oauth-protected-resource/mcp`;
const PRM = {
  resource: RESOURCE,
  authorization_servers: [ISSUER],
  scopes_supported: ['mcp:read', 'mcp:write'],
  bearer_methods_supported: ['header'],
  resource_name: 'bearer-guard interop throwaway MCP server',
};

function challenge(res, status, params) {
  const parts = Object.entries(params).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}="${v}"`);
  res.writeHead(status, { 'www-authenticate': `Bearer ${parts.join(', ')}`, 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: params.error ?? 'unauthorized' }));
}

async function authenticate(req) {
  const h = req.headers.authorization;
  if (!h) return { status: 401 };
  const m = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(h);
  if (!m) return { status: 401, error: 'invalid_request' };
  let v;
  try {
    v = verifyJwt(m[1], jwks);
  } catch (err) {
    if (/no key/.test(err.message)) {
      jwks = (await getJson(asMeta.jwks_uri)).json; // key rotation
      try { v = verifyJwt(m[1], jwks); } catch { return { status: 401, error: 'invalid_token' }; }
    } else return { status: 401, error: 'invalid_token' };
  }
  const { header, payload } = v;
  const now = Math.floor(Date.now() / 1000);
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!/^(application\/)?at\+jwt$/i.test(header.typ ?? '') || payload.iss !== ISSUER || !aud.includes(RESOURCE)
    || typeof payload.exp !== 'number' || payload.exp <= now) {
    return { status: 401, error: 'invalid_token' };
  }
  return { status: 200, scopes: new Set((payload.scope ?? '').split(' ').filter(Boolean)), sub: payload.sub };
}

// write_note needs mcp:write (only); everything else needs mcp:read. With
// --write-needs-read, write_note needs mcp:read AND mcp:write.
function requiredScopes(body) {
  const msgs = Array.isArray(body) ? body : [body];
  const need = new Set();
  for (const msg of msgs) {
    if (msg?.method === 'tools/call' && msg.params?.name === 'write_note') {
      need.add('mcp:write');
      if (args['write-needs-read']) need.add('mcp:read');
    } else {
      need.add('mcp:read');
    }
  }
  if (!need.size) need.add('mcp:read');
  return need;
}

function newMcpServer() {
  const mcp = new McpServer({ name: 'bearer-guard-dev-throwaway', version: '0.0.0' });
  mcp.registerTool('echo', {
    description: 'Echo the input text (needs mcp:read)',
    inputSchema: { text: z.string() },
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  const notes = [];
  mcp.registerTool('write_note', {
    description: 'Store a note (needs mcp:write)',
    inputSchema: { note: z.string() },
  }, async ({ note }) => {
    notes.push(note);
    return { content: [{ type: 'text', text: `stored note #${notes.length}` }] };
  });
  return mcp;
}

const transports = new Map();

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw new Error('body too large');
    chunks.push(chunk);
  }
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
}

server.on('request', async (req, res) => {
  const { pathname } = new URL(req.url, ORIGIN);
  try {
    if (req.method === 'GET' && pathname === '/.well-known/oauth-protected-resource/mcp') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      res.end(JSON.stringify(PRM));
      log(req.method, pathname, 200);
      return;
    }
    if (pathname !== '/mcp') {
      res.writeHead(404).end();
      log(req.method, pathname, 404);
      return;
    }
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    const auth = await authenticate(req);
    if (auth.status === 401) {
      challenge(res, 401, { error: auth.error, resource_metadata: PRM_URL, scope: 'mcp:read' });
      log(req.method, pathname, 401, auth.error ?? '(no token)');
      return;
    }
    const need = requiredScopes(body);
    const missing = [...need].filter((s) => !auth.scopes.has(s));
    if (missing.length) {
      // Name every scope this request needs (not only the missing ones), or
      // granted ∪ needed with --include-granted-scopes.
      const scope = args['include-granted-scopes'] ? [...new Set([...auth.scopes, ...need])] : [...need];
      challenge(res, 403, { error: 'insufficient_scope', scope: scope.join(' '), resource_metadata: PRM_URL });
      log(req.method, pathname, 403, `insufficient_scope (needs ${missing.join(' ')})`);
      return;
    }

    const sid = req.headers['mcp-session-id'];
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body) || sid) {
        res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'no valid session' }, id: null }));
        log(req.method, pathname, sid ? 404 : 400);
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => { if (transport.sessionId) transports.delete(transport.sessionId); };
      await newMcpServer().connect(transport);
    }
    const what = body?.method ?? (Array.isArray(body) ? 'batch' : '');
    log(req.method, pathname, 'ok', what, body?.params?.name ?? '');
    await transport.handleRequest(req, res, body);
  } catch (err) {
    log('error', err?.message ?? String(err));
    if (!res.headersSent) res.writeHead(500).end();
  }
});

let closing = false;
function shutdown() {
  if (closing) return;
  closing = true;
  for (const t of transports.values()) t.close().catch(() => {});
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

process.stdout.write(`${JSON.stringify({ url: RESOURCE, resource_metadata: PRM_URL })}\n`);
