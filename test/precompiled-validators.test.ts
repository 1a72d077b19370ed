// The validators generated at build time (tools/build-validators.ts, into dist/) answer exactly
// as Ajv compiling the schema at run time does: same verdict, same errors (the config and
// manifest messages are built from them), same defaults filled in. A stale one is not used.
import t from 'tap';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { compile, loadValidator, type ValidatorSpec } from '../agent/validation/precompiled.js';
import { ConfigValidation } from '../agent/config/schema.js';
import { ManifestValidation } from '../agent/models/manifest-schema.js';
import { root } from './helpers/agent.js';
import { INT8 } from './helpers/model-packages.js';

const dist = (p: string): URL => pathToFileURL(path.join(root, 'dist', p));
const manifest = JSON.parse(readFileSync(path.join(INT8, 'manifest.json'), 'utf8')) as Record<string, unknown>;
const base = { deviceId: 'pi-1', dataDir: 'var' };

const cases: [string, URL, ValidatorSpec, [string, unknown][]][] = [
  ['config', dist('agent/config/schema.js'), ConfigValidation, [
    ['the smallest valid config', base],
    ['a wrong type', { ...base, health: { port: 'eighty' } }],
    ['unknown keys, top level and nested', { ...base, helth: {}, telemetry: { maxbytes: 1 } }],
    ['missing required keys', { extra: true }],
    ['a bad enum', { ...base, models: [{ name: 'm', package: 'p', backend: 'gpu' }] }],
    ['a bad pattern and a range', { ...base, deviceId: 'a/b#', health: { port: 70000 } }],
    ['not an object', []],
  ]],
  ['manifest', dist('agent/models/manifest-schema.js'), ManifestValidation, [
    ['the digits-int8 manifest', manifest],
    ['a bad version and an unknown key', { ...manifest, version: '1.0', extra: 1 }],
    ['a bad scheme (a union of literals)', { ...manifest, quantization: { scheme: 'fp8', precision: 'int8' } }],
    ['a bad date-time (custom format)', { ...manifest, evaluation: { dataset: 'd', metric: 'm', value: 1, samples: 1, measuredAt: 'yesterday' } }],
    ['missing keys', { format: 1 }],
  ]],
];

for (const [what, schemaModule, spec, inputs] of cases) {
  t.test(`${what}: the generated validator answers as the run-time compiled one`, async (t) => {
    const generated = await loadValidator(schemaModule, async () => spec);
    t.ok(generated.precompiled, `dist/ has a fresh generated ${what} validator (npm run build:ts makes it)`);
    const compiled = compile(spec);
    for (const [name, input] of inputs) {
      const a = structuredClone(input);
      const b = structuredClone(input);
      t.equal(generated.validate(a), compiled(b), `${name}: same verdict`);
      t.same(generated.validate.errors ?? null, compiled.errors ?? null, `${name}: same errors`);
      t.same(a, b, `${name}: same defaults filled in`);
    }
  });
}

t.test('a generated validator built from another version of the schema is not used', async (t) => {
  const dir = t.testdir({ 'schema.js': 'export const changed = true;\n' });
  copyFileSync(path.join(root, 'dist/agent/config/schema.validator.js'), path.join(dir, 'schema.validator.js'));
  let compiledHere = false;
  const v = await loadValidator(pathToFileURL(path.join(dir, 'schema.js')), async () => {
    compiledHere = true;
    return ConfigValidation;
  });
  t.notOk(v.precompiled, 'the stale file is refused');
  t.ok(compiledHere, 'the schema is compiled at run time instead');
  t.notOk(v.validate({ ...base, helth: {} }), 'and still refuses unknown keys');
});
