// One error catalog (protocol/errors.ts): every EDGE_ code is defined there once, with one status
// and one sentence. This test reads the sources and fails when a code is made anywhere else: a
// string literal 'EDGE_…' (use the catalog's factory, or its .code to compare), or an EdgeError
// constructed from a literal code.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogCodes, Errors, FleetErrors, ProtocolErrors, ToolErrors, UpdateErrors, statusOf } from '../protocol/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CATALOG = 'protocol/errors.ts';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Where the sources make an error code outside the catalog. */
function madeOutside(file: string, text: string): string[] {
  const found: string[] = [];
  const line = (i: number) => text.slice(0, i).split('\n').length;
  // A quoted code (an environment variable prefix such as 'EDGE_AGENT__' ends in _ and is not one).
  for (const m of text.matchAll(/(['"`])(EDGE_[A-Z0-9_]*[A-Z0-9])\1/g)) found.push(`${file}:${line(m.index!)}: ${m[2]}`);
  for (const m of text.matchAll(/new EdgeError\(\s*['"`]/g)) found.push(`${file}:${line(m.index!)}: new EdgeError with a literal code`);
  return found;
}

t.test('no error code is made outside the catalog', async (t) => {
  const files = ['agent', 'controller', 'protocol', 'tools'].flatMap(sources).filter((f) => f !== CATALOG);
  t.ok(files.length > 100, 'sources found');
  const found = files.flatMap((f) => madeOutside(f, readFileSync(path.join(root, f), 'utf8')));
  t.same(found, [], `define the code in ${CATALOG} and use its factory (or .code)`);
  // A check of the check.
  t.same(madeOutside('x.ts', "throw new EdgeError('EDGE_NEW', 'x', 400);\nif (e.code === \"EDGE_OTHER\") {}\nconst env = 'EDGE_AGENT__';"),
    ['x.ts:1: EDGE_NEW', 'x.ts:2: EDGE_OTHER', 'x.ts:1: new EdgeError with a literal code'], 'the scanner finds literal codes');
});

t.test('each code once, with one status', async (t) => {
  const codes = catalogCodes();
  t.equal(new Set(codes).size, codes.length, 'no code twice');
  const sections = [Errors, FleetErrors, ProtocolErrors, UpdateErrors, ToolErrors].flatMap((s) => Object.values(s));
  t.equal(sections.length, codes.length, 'every code is in a section');
  for (const f of sections) {
    t.match(f.code, /^EDGE_[A-Z0-9_]+$/);
    t.equal(statusOf(f.code), f.statusCode);
  }
  t.equal(Errors.PACKAGE_INVALID.statusCode, 422, 'a refused package is 422 for the agent and the tools alike');
  t.equal(Errors.PACKAGE_INVALID('p', 'why').statusCode, 422);
});
