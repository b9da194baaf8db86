// `npm run vimedge -- <verb> ...` in a checkout: builds first when dist/ is missing or older than its
// sources (so a fresh clone needs only `npm install`, which runs no build script), then runs the CLI.
// The build's log goes to stderr, leaving stdout to the verb (`--json`).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const cli = path.join(root, 'dist/src/cli/main.js');

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(file) : statSync(file).mtimeMs);
  }
  return newest;
}

const stale = !existsSync(cli)
  || ['src', 'assembly'].some((dir) => newestSource(path.join(root, dir)) > statSync(cli).mtimeMs);
if (stale) {
  console.error('vimedge: building (npm run build) ...');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const build = spawnSync(npm, ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
await import(cli);
