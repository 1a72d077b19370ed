// Who may import whom. The wire format lives in protocol/, owned by neither end: the controller
// imports it and nothing from agent/ except the public pieces below, and protocol/ imports
// neither end. Each name rule (device id, stream, model name, model version) is written once,
// in protocol/names.ts.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ID_PATTERN, MODEL_NAME, MODEL_VERSION, STREAM_NAME } from '../protocol/names.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** What the controller may take from agent/, and why. */
const CONTROLLER_MAY_IMPORT: Record<string, string> = {
  'agent/version.ts': 'edge-fleet --version prints the package version',
  'agent/models/archive.ts': 'the model package format: publish packs and reads .edgepkg archives',
  'agent/models/manifest.ts': 'the model package format: manifest and signature file names',
  'agent/models/verify.ts': 'reads a package for its manifest with MANIFEST_ONLY: no device\'s signature policy applies',
  'agent/security/key-file.ts': 'the same private-key file checks for the controller\'s keys',
  'agent/security/command-signing.ts': 'signs commands in the format devices verify',
  'agent/drift/compare.ts': 'fleet drift compares profiles as the device does',
  'agent/drift/profile.ts': 'fleet drift merges device profiles',
  'agent/drift/reference.ts': 'fleet drift reads the reference a package carries',
  'agent/drift/report.ts': 'the drift report document devices send',
  'agent/tensor/npy.ts': 'edge-fleet dataset writes .npy inputs as edge-model eval/finetune read them',
  'agent/drift/verdict.ts': 'one drift verdict for every screen: the device page, the dashboard and edge-fleet drift',
  'agent/ui/style.css': 'the dashboard serves the agent UI\'s stylesheet',
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (/\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Repository paths a file refers to: static and dynamic imports, re-exports, path.join(…'../agent/…'). */
function references(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const specs = [
    ...text.matchAll(/\b(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g),
  ].map((m) => path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
  for (const m of text.matchAll(/path\.(?:join|resolve)\(([^)]*)\)/g)) {
    const agent = /['"]((?:\.\.\/)+agent\/[^'"]+)['"]/.exec(m[1]!);
    if (agent) specs.push(`agent/${agent[1]!.replace(/^(?:\.\.\/)+agent\//, '')}`);
  }
  return specs;
}

t.test('the controller imports from agent/ only what the allow-list names', async (t) => {
  const files = sources('controller');
  t.ok(files.length > 10, 'controller sources found');
  const bad: string[] = [];
  const used = new Set<string>();
  for (const f of files) {
    for (const r of references(f)) {
      if (!r.startsWith('agent/')) continue;
      if (r in CONTROLLER_MAY_IMPORT) used.add(r);
      else bad.push(`${f} -> ${r}`);
    }
  }
  t.same(bad, [], 'the wire format belongs in protocol/; anything else shared goes on the allow-list with its reason');
  t.same(Object.keys(CONTROLLER_MAY_IMPORT).filter((k) => !used.has(k)), [], 'every allow-list entry is still used');
  // A check of the check: the scanner sees a static, a dynamic and a path.join reference.
  t.ok(references('controller/serve.ts').includes('protocol/topics.ts'), 'the scanner resolves static imports');
  t.ok(references('controller/cli.ts').includes('agent/security/command-signing.ts'), 'and dynamic ones');
});

t.test('protocol/ imports neither end', async (t) => {
  const bad = sources('protocol').flatMap((f) => references(f).filter((r) => !r.startsWith('protocol/')).map((r) => `${f} -> ${r}`));
  t.same(bad, [], 'protocol/ stands alone');
});

t.test('every name rule is written once, in protocol/names.ts', async (t) => {
  const rules = [ID_PATTERN, STREAM_NAME, MODEL_NAME, MODEL_VERSION].map((r) => r.source);
  const bodies = rules.map((s) => s.replace(/^\^|\$$/g, ''));
  const files = ['agent', 'controller', 'tools', 'protocol'].flatMap(sources).filter((f) => f !== 'protocol/names.ts');
  const found: string[] = [];
  for (const f of files) {
    const text = readFileSync(path.join(root, f), 'utf8');
    for (const b of bodies) if (text.includes(b)) found.push(`${f}: ${b}`);
  }
  t.same(found, [], 'use the rule from protocol/names.ts (its .source where a schema needs a string)');
});
