// The desired-state document (edge/v1/{device}/models/desired and the group form) and how
// a device combines its own with its groups'. Validated strictly: a bad document is
// reported and ignored, never half-applied.
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { MODEL_NAME, MODEL_VERSION } from '../../protocol/names.js';

// Plain JSON schema, not TypeBox: this module is loaded before READY=1 and TypeBox's import
// alone is ~150 ms of start-up CPU under --lite-mode.
const NAME = MODEL_NAME.source;
export const DesiredModelSchema = {
  type: 'object',
  required: ['name', 'version', 'sha256', 'size'],
  properties: {
    name: { type: 'string', pattern: NAME },
    version: { type: 'string', pattern: MODEL_VERSION.source },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    size: { type: 'integer', minimum: 0 },
    signature: { type: 'string', maxLength: 4096 },
    url: { type: 'string', pattern: '^https://' },
  },
  additionalProperties: true,
} as const;

export const DesiredDocSchema = {
  type: 'object',
  required: ['v', 'models'],
  properties: {
    v: { const: 1 },
    models: { type: 'array', items: DesiredModelSchema, maxItems: 64 },
    updatedAt: { type: 'string' },
  },
  additionalProperties: true,
} as const;

export interface DesiredModel {
  name: string;
  version: string;
  sha256: string;
  size: number;
  signature?: string;
  url?: string;
}

export interface DesiredDoc {
  v: 1;
  models: DesiredModel[];
  updatedAt?: string;
}

// Compiled on the first document, not at import: that is start-up time before READY=1.
let validate: ValidateFunction<DesiredDoc> | undefined;

/** The parsed document, `null` for an empty (cleared) retained message, or a list of problems. */
export function parseDesired(payload: Buffer): DesiredDoc | null | { problems: string } {
  if (payload.length === 0) return null;
  if (payload.length > 256 * 1024) return { problems: `document of ${payload.length} bytes exceeds 256 KiB` };
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return { problems: 'not valid JSON; expected {"v":1,"models":[{"name","version","sha256","size"}]}' };
  }
  validate ??= new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv({ allErrors: true, strict: false }).compile<DesiredDoc>(DesiredDocSchema);
  if (!validate(doc)) {
    return { problems: (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`).join('; ') };
  }
  const names = new Set<string>();
  for (const m of doc.models) {
    if (names.has(m.name)) return { problems: `model "${m.name}" is listed twice` };
    names.add(m.name);
  }
  return doc;
}

/**
 * Per model name, what this device should run: its own document wins over its groups', and
 * among groups the one listed first in config.mqtt.groups wins.
 */
export function effectiveDesired(device: DesiredDoc | undefined, groups: (DesiredDoc | undefined)[]): Map<string, DesiredModel> {
  const out = new Map<string, DesiredModel>();
  for (const doc of [device, ...groups]) {
    for (const m of doc?.models ?? []) if (!out.has(m.name)) out.set(m.name, m);
  }
  return out;
}
