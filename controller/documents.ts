// What the controller accepts from devices, as schemas: device status, reported model
// state, drift reports (telemetry stream "drift") and command replies. Everything a device
// (or anyone with publish rights on its topics) sends is untrusted: ingest checks it against
// these schemas and refuses what does not match, with the reason, into `rejected`. The store
// checks again what it reads back (a row written by an older version, or by hand), so the
// views and the rollout driver only ever see documents of these shapes.
//
// The schemas hold only what the controller reads; other keys pass through untouched.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { ValidateFunction } from 'ajv';
import { createRequire } from 'node:module';

const Open = { additionalProperties: true } as const;
const Str = (max = 256): ReturnType<typeof Type.String> => Type.String({ maxLength: max });
const ModelRef = Type.Object({ name: Str(), version: Str() }, Open);

export const StatusDocSchema = Type.Object({
  state: Type.Optional(Str(64)),
  agentVersion: Type.Optional(Str(64)),
  kernelVariant: Type.Optional(Str(256)),
  models: Type.Optional(Type.Array(ModelRef, { maxItems: 256 })),
  groups: Type.Optional(Type.Array(Str(128), { maxItems: 64 })),
  uptimeSeconds: Type.Optional(Type.Number()),
}, Open);

const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
/** Field accuracy per version from labelled answers (agent/learning/field-accuracy.ts); older agents send none. */
const FieldReportSchema = Type.Object({
  versions: Type.Record(Type.String({ maxLength: 256 }), Type.Object({ labelled: Count, correct: Count }, Open), { maxProperties: 64 }),
  pairs: Type.Array(Type.Object({ primary: Str(), shadow: Str(), labelled: Count, primaryCorrect: Count, shadowCorrect: Count }, Open), { maxItems: 64 }),
}, Open);

export const ReportedDocSchema = Type.Object({
  models: Type.Array(Type.Object({
    name: Str(),
    version: Str(),
    state: Str(64),
    reason: Type.Optional(Str(4096)),
    shadow: Type.Optional(Type.Object({ agreement: Type.Optional(Type.Number()), samples: Type.Optional(Type.Number()) }, Open)),
    field: Type.Optional(FieldReportSchema),
  }, Open), { maxItems: 256 }),
}, Open);

export const DriftReportSchema = Type.Object({
  model: Str(),
  version: Str(),
  verdict: Str(64),
  window: Type.Object({
    seq: Type.Optional(Type.Number()),
    end: Type.Optional(Str(64)),
    size: Type.Optional(Type.Number()),
  }, Open),
  features: Type.Array(Type.Object({
    name: Str(),
    verdict: Type.Optional(Str(64)),
    score: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    reasons: Type.Optional(Type.Array(Type.String())),
  }, Open), { maxItems: 4096 }),
  profile: Type.Optional(Type.Object({}, Open)),
}, Open);

export const CommandReplySchema = Type.Object({
  id: Str(128),
  ok: Type.Boolean(),
}, Open);

export type StatusDoc = Static<typeof StatusDocSchema>;
export type ReportedDoc = Static<typeof ReportedDocSchema>;
export type DriftReportDoc = Static<typeof DriftReportSchema>;
export type CommandReplyDoc = Static<typeof CommandReplySchema>;

const ajv = new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv({ allErrors: true, strict: false });
const compile = <T extends TSchema>(s: T): ValidateFunction<Static<T>> => ajv.compile<Static<T>>(s);

const validators = {
  status: compile(StatusDocSchema),
  reported: compile(ReportedDocSchema),
  drift: compile(DriftReportSchema),
  'command reply': compile(CommandReplySchema),
};

export type DocumentKind = keyof typeof validators;
type DocOf<K extends DocumentKind> = K extends 'status' ? StatusDoc : K extends 'reported' ? ReportedDoc : K extends 'drift' ? DriftReportDoc : CommandReplyDoc;

/** The document if it has the shape of `kind`, else the reason it does not ("/models/0 must be object"). */
export function checkDocument<K extends DocumentKind>(kind: K, doc: unknown): { doc: DocOf<K> } | { problem: string } {
  const v = validators[kind] as ValidateFunction<DocOf<K>>;
  if (v(doc)) return { doc };
  const errs = (v.errors ?? []).slice(0, 3).map((e) => `${e.instancePath || '(top level)'} ${e.message ?? 'is invalid'}`);
  return { problem: `${kind} document is invalid: ${errs.join('; ')}` };
}

/** JSON text from the database back to a checked document, or undefined (bad JSON or bad shape). */
export function storedDocument<K extends DocumentKind>(kind: K, json: string | null | undefined): DocOf<K> | undefined {
  if (json == null) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  const r = checkDocument(kind, parsed);
  return 'doc' in r ? r.doc : undefined;
}
