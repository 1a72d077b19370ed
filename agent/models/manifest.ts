// The manifest of a model package (manifest.json beside model.onnx): what the model is,
// how to feed it, how to read its outputs, how it was quantized and evaluated, the drift
// reference, and the sha256 of every file. The schema is in manifest-schema.ts;
// docs/model-package.md describes each field.
import { loadValidator } from '../validation/precompiled.js';
import type { Manifest } from './manifest-schema.js';

export type { Manifest, TensorSpecManifest } from './manifest-schema.js';

export const MANIFEST_FILE = 'manifest.json';
export const MODEL_FILE = 'model.onnx';
/** Detached signature over the exact bytes of manifest.json (which hashes every other file). */
export const SIGNATURE_FILE = 'manifest.sig';
export { PACKAGE_FORMAT } from './package-format.js';

const { validate: check } = await loadValidator<Manifest>(new URL('./manifest-schema.js', import.meta.url), async () => (await import('./manifest-schema.js')).ManifestValidation);

/** The schema problems of a parsed manifest, as sentences; empty when it is valid. */
export function manifestProblems(value: unknown): string[] {
  if (check(value)) return [];
  const errors = check.errors ?? [];
  const out: string[] = [];
  // A union of literals fails once per literal: say "one of ..." once instead.
  const allowed = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword === 'const') {
      const list = allowed.get(e.instancePath) ?? [];
      list.push((e.params as { allowedValue: unknown }).allowedValue);
      allowed.set(e.instancePath, list);
    }
  }
  for (const e of errors) {
    const where = e.instancePath || '(top level)';
    if (e.keyword === 'const') continue;
    if (e.keyword === 'anyOf' && allowed.has(e.instancePath)) {
      out.push(`${where}: must be one of ${allowed.get(e.instancePath)!.map((v) => JSON.stringify(v)).join(', ')}`);
    } else if (e.keyword === 'additionalProperties') {
      out.push(`${where}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`);
    } else if (e.keyword === 'required') {
      out.push(`${where}: missing "${(e.params as { missingProperty: string }).missingProperty}"`);
    } else if (e.instancePath === '/version' && e.keyword === 'pattern') {
      out.push('/version: must be a semantic version such as 1.2.0 or 1.2.0-int8');
    } else {
      out.push(`${where}: ${e.message}`);
    }
  }
  return out;
}
