#!/usr/bin/env node
// Convenience runner: starts as.mjs, starts the MCP server under test with the
// AS details, waits until its protected resource metadata answers, runs
// an MCP client against it, then stops everything it started.
//
//   node run-e2e.mjs --server http://127.0.0.1:3000/mcp [--client ts|py|rmcp] [--wait 180] [--as-port 0]
//                    [--no-as] [--timeout S] [--verbose] -- CMD ARGS...
//
// --no-as starts no as.mjs: the server under test brings its own authorization server (the demo without
// --issuer embeds the test kit's development one); the placeholders below are then empty.
//
// --client picks the client under test (default ts):
//   ts   node mcp-client-ts.mjs                    (official TypeScript SDK)
//   py   .venv/bin/python mcp-client-py.py         (official Python SDK, see requirements.txt)
//   rmcp ../../target/debug/rmcp-interop-client    (rmcp with its `auth` feature; build it first)
//   dpop node dpop-client.mjs                      (oauth4webapi, DPoP-bound tokens; demo with --dpop required)
//
// CMD ARGS may contain the placeholders {issuer}, {introspection_client_id},
// {introspection_client_secret}; the same values are also in the environment
// as AS_ISSUER, AS_INTROSPECTION_CLIENT_ID, AS_INTROSPECTION_CLIENT_SECRET.
// Example (the exact demo-server flags are up to that server):
//   node run-e2e.mjs --server http://127.0.0.1:3000/mcp -- \
//     cargo run --example demo -- --listen 127.0.0.1:3000 --issuer {issuer}
//
// The server process is started in its own process group and that group is
// sent SIGTERM at the end (cargo run spawns the real binary as a child).

import { spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  HERE, cleanupOnSignals, fetchT, parseArgs, spawnGroup, spawnReady, stopChild, stopGroup,
} from './lib/flow.mjs';

const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
if (dd < 0 || dd === argv.length - 1) {
  console.error('usage: node run-e2e.mjs --server URL [--client ts|py|rmcp] [--wait S] [--as-port N] [--timeout S] [--verbose] -- CMD ARGS...');
  process.exit(2);
}
const args = parseArgs(argv.slice(0, dd), {
  server: 'string', wait: 'number', 'as-port': 'number', verbose: 'boolean', timeout: 'number', client: 'string',
  'no-as': 'boolean',
});
if (!args.server) { console.error('--server is required'); process.exit(2); }
const CLIENTS = {
  ts: [process.execPath, path.join(HERE, 'mcp-client-ts.mjs')],
  py: [path.join(HERE, '.venv', 'bin', 'python'), path.join(HERE, 'mcp-client-py.py')],
  // oauth4webapi's DPoP client: for a demo run with --dpop required --dpop-nonces.
  dpop: [process.execPath, path.join(HERE, 'dpop-client.mjs')],
  // env RMCP_CLIENT overrides the path (run.sh passes the binary it built).
  rmcp: [process.env.RMCP_CLIENT || path.join(HERE, '..', '..', 'target', 'debug', 'rmcp-interop-client')],
};
const clientCmd = CLIENTS[args.client ?? 'ts'];
if (!clientCmd) { console.error(`--client must be one of ${Object.keys(CLIENTS).join(', ')}`); process.exit(2); }
const cmd = argv.slice(dd + 1);

const serverUrl = new URL(args.server);
const prmUrl = new URL(`/.well-known/oauth-protected-resource${serverUrl.pathname === '/' ? '' : serverUrl.pathname}`, serverUrl);

let as;
let srv;
let code = 1;
async function cleanup() {
  await stopGroup(srv);
  await stopChild(as?.child);
}
cleanupOnSignals(cleanup);
try {
  // --no-as: the server under test brings its own authorization server (the demo's embedded one).
  let r = { issuer: '', introspection_client_id: '', introspection_client_secret: '' };
  if (!args['no-as']) {
    as = await spawnReady(path.join(HERE, 'as.mjs'), ['--port', String(args['as-port'] ?? 0)], { quiet: !args.verbose, prefix: 'as' });
    r = as.ready;
  }
  const subst = (s) => s.replaceAll('{issuer}', r.issuer)
    .replaceAll('{introspection_client_id}', r.introspection_client_id)
    .replaceAll('{introspection_client_secret}', r.introspection_client_secret);
  if (as) console.log(`INFO AS ready - ${r.issuer}`);
  srv = spawnGroup(cmd[0], cmd.slice(1).map(subst), {
    stdio: ['ignore', args.verbose ? 'inherit' : 'ignore', args.verbose ? 'inherit' : 'ignore'],
    env: {
      ...process.env,
      AS_ISSUER: r.issuer,
      AS_INTROSPECTION_CLIENT_ID: r.introspection_client_id,
      AS_INTROSPECTION_CLIENT_SECRET: r.introspection_client_secret,
    },
  });
  const deadline = Date.now() + (args.wait ?? 180) * 1000;
  let up = false;
  while (Date.now() < deadline && srv.exitCode === null) {
    try {
      const res = await fetchT(prmUrl, {}, 2000);
      await res.body?.cancel();
      if (res.status === 200) { up = true; break; }
    } catch { /* not up yet */ }
    await sleep(500);
  }
  if (!up) throw new Error(`server under test did not serve ${prmUrl} (exit code ${srv.exitCode})`);
  console.log(`INFO server under test ready - ${prmUrl}`);
  const client = spawn(clientCmd[0], [
    ...clientCmd.slice(1), '--server', args.server,
    ...(args.timeout ? ['--timeout', String(args.timeout)] : []), ...(args.verbose ? ['--verbose'] : []),
  ], { stdio: 'inherit' });
  code = await new Promise((resolve) => client.on('exit', (c) => resolve(c ?? 1)));
} catch (err) {
  console.error(err?.message ?? String(err));
  console.log('0 passed, 1 failed');
} finally {
  await cleanup();
}
process.exit(code);
