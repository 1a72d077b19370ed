// A house a newcomer can read: no source file holds more than one room. The limit is on lines
// of product and tooling source (TypeScript, JavaScript, C++, shell); tests and generated files
// are aside. A file that grows past it splits along its concerns (see docs/architecture.md).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

t.setTimeout(60_000);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIMIT = 500;
const SOURCE = /\.(?:ts|js|mjs|cc|cpp|h|hpp|sh|py)$/;

/** Tracked files: what a clean clone holds, so build output and node_modules never count. */
function tracked(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
}

t.test(`no source file is over ${LIMIT} lines (tests aside)`, async (t) => {
  const files = tracked().filter((f) => SOURCE.test(f) && !f.startsWith('test/'));
  t.ok(files.some((f) => f.startsWith('agent/')) && files.some((f) => f.startsWith('native/src/')), 'product sources found');
  const over = files
    .map((f) => ({ f, lines: readFileSync(path.join(root, f), 'utf8').split('\n').length - 1 }))
    .filter(({ lines }) => lines > LIMIT)
    .map(({ f, lines }) => `${f}: ${lines} lines`);
  t.same(over, [], `split files over ${LIMIT} lines along their concerns`);
});
