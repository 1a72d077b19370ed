// The desired-state document (edge/v1/{device}/models/desired and the group form) and how
// a device combines its own with its groups'. Validated strictly: a bad document is
// reported and ignored, never half-applied.
import { Type, type Static } from '@sinclair/typebox';
import { Ajv, type ValidateFunction } from 'ajv';

export const DesiredModel = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
  version: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  size: Type.Integer({ minimum: 0 }),
  signature: Type.Optional(Type.String({ maxLength: 4096 })),
  url: Type.Optional(Type.String({ pattern: '^https://' })),
}, { additionalProperties: true });

export const DesiredDoc = Type.Object({
  v: Type.Literal(1),
  models: Type.Array(DesiredModel, { maxItems: 64 }),
  updatedAt: Type.Optional(Type.String()),
}, { additionalProperties: true });

export type DesiredModel = Static<typeof DesiredModel>;
export type DesiredDoc = Static<typeof DesiredDoc>;

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
  validate ??= new Ajv({ allErrors: true, strict: false }).compile<DesiredDoc>(DesiredDoc);
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
