#!/usr/bin/env node
// Runs mcp-client-ts.mjs against the THROWAWAY dev server (dev/mcp-server.mjs),
// with a fresh as.mjs behind it. Only for developing the client script until
// the real rmcp + bearer-guard demo server exists.
//
//   node dev/run-dev.mjs [--include-granted-scopes] [--write-needs-read] [--refresh-always] [--verbose]
//
// --include-granted-scopes  dev server's 403 scope = granted ∪ required
// --write-needs-read        write_note needs mcp:read AND mcp:write
// --refresh-always          as.mjs issues refresh tokens without offline_access
//                           (shows how the TS SDK's step-up behaves then)

import { spawn } from 'node:child_process';
import path from 'node:path';

import { HERE, parseArgs, spawnReady, stopChild } from '../lib/flow.mjs';

const args = parseArgs(process.argv.slice(2), {
  'include-granted-scopes': 'boolean', 'write-needs-read': 'boolean', 'refresh-always': 'boolean', verbose: 'boolean',
});
const quiet = !args.verbose;
const children = [];
let code = 1;
try {
  const as = await spawnReady(path.join(HERE, 'as.mjs'), ['--port', '0', ...(args['refresh-always'] ? ['--refresh-always'] : [])], { quiet, prefix: 'as' });
  children.push(as.child);
  const mcp = await spawnReady(path.join(HERE, 'dev', 'mcp-server.mjs'), [
    '--as', as.ready.issuer,
    ...(args['include-granted-scopes'] ? ['--include-granted-scopes'] : []),
    ...(args['write-needs-read'] ? ['--write-needs-read'] : []),
  ], { quiet, prefix: 'dev-mcp' });
  children.push(mcp.child);
  console.log(`INFO dev setup - AS ${as.ready.issuer}, throwaway MCP server ${mcp.ready.url}`);
  const client = spawn(process.execPath, [path.join(HERE, 'mcp-client-ts.mjs'), '--server', mcp.ready.url, ...(args.verbose ? ['--verbose'] : [])], { stdio: 'inherit' });
  code = await new Promise((resolve) => client.on('exit', (c) => resolve(c ?? 1)));
} catch (err) {
  console.error(err?.stack ?? String(err));
  console.log('0 passed, 1 failed');
} finally {
  await Promise.all(children.map((ch) => stopChild(ch)));
}
process.exit(code);
