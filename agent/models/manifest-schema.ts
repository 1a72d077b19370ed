// The schema of a model package's manifest.json (docs/model-package.md describes each field).
// Its validator is compiled at build time (tools/build-validators.ts); agent/models/manifest.ts
// loads it without importing this module unless the generated one is missing or stale.
import { Type, type Static } from '@sinclair/typebox';
import { MODEL_NAME } from '../../protocol/names.js';
import type { ValidatorSpec } from '../validation/precompiled.js';
import { formats } from './formats.js';
import { PACKAGE_FORMAT } from './package-format.js';

const Strict = { additionalProperties: false } as const;

const SEMVER = '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?$';

export const DTypeSchema = Type.Union([Type.Literal('float32'), Type.Literal('uint8'), Type.Literal('int8'), Type.Literal('int32'), Type.Literal('int64')], { description: 'element type' });

export const TensorSpecSchema = Type.Object({
  name: Type.String({ minLength: 1, description: 'tensor name in the ONNX graph' }),
  dtype: DTypeSchema,
  shape: Type.Array(Type.Union([
    Type.Integer({ minimum: 1 }),
    Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'symbolic dimension (the batch)' }),
  ]), { description: 'dimensions; a name is symbolic (any size)' }),
}, Strict);

export const ManifestSchema = Type.Object({
  format: Type.Literal(PACKAGE_FORMAT, { description: 'package format version' }),
  name: Type.String({ pattern: MODEL_NAME.source, description: 'model name' }),
  version: Type.String({ pattern: SEMVER, description: 'semantic version of this build of the model' }),
  task: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$', description: 'what the model does, e.g. image-classification' }),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
  inputs: Type.Array(TensorSpecSchema, { minItems: 1 }),
  outputs: Type.Array(TensorSpecSchema, { minItems: 1 }),
  preprocessing: Type.Optional(Type.Object({
    layout: Type.Union([Type.Literal('NCHW'), Type.Literal('NHWC'), Type.Literal('none')]),
    colorSpace: Type.Optional(Type.Union([Type.Literal('grayscale'), Type.Literal('rgb'), Type.Literal('bgr')])),
    scale: Type.Number({ exclusiveMinimum: 0, description: 'raw value x scale, then (x - mean) / std' }),
    mean: Type.Array(Type.Number(), { minItems: 1, description: 'one per channel, or one for all' }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1 }),
  }, Strict)),
  postprocessing: Type.Optional(Type.Object({
    output: Type.String({ minLength: 1, description: 'which output the steps apply to' }),
    softmax: Type.Boolean({ description: 'output holds logits: apply softmax for probabilities' }),
    argmax: Type.Boolean({ description: 'report the index of the largest value (the class)' }),
    labels: Type.Optional(Type.Array(Type.String(), { description: 'class names by index' })),
  }, Strict)),
  quantization: Type.Object({
    scheme: Type.Union(['none', 'qdq-static', 'qdq-dynamic', 'qoperator'].map((s) => Type.Literal(s))),
    precision: Type.Union(['float32', 'float16', 'int8', 'uint8', 'mixed'].map((s) => Type.Literal(s))),
  }, { additionalProperties: true, description: 'the tool that quantized the model adds its details here' }),
  evaluation: Type.Optional(Type.Object({
    dataset: Type.String({ minLength: 1 }),
    metric: Type.String({ minLength: 1 }),
    value: Type.Number(),
    samples: Type.Integer({ minimum: 1 }),
    measuredAt: Type.String({ format: 'date-time' }),
  }, { additionalProperties: true, description: 'results recorded when the package was built' })),
  drift: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'reference statistics for drift detection (opaque here)' })),
  files: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]*$' }), Type.Object({
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    bytes: Type.Integer({ minimum: 0 }),
  }, Strict), { description: 'every file of the package but manifest.json and its signature' }),
}, Strict);

/** The quantizing tool and the build add their own keys to these two objects. */
export type Manifest = Static<typeof ManifestSchema> & {
  quantization: Record<string, unknown>;
  evaluation?: Record<string, unknown>;
};
export type TensorSpecManifest = Static<typeof TensorSpecSchema>;

export const ManifestValidation: ValidatorSpec = { schema: ManifestSchema, options: { allErrors: true, strict: true, formats } };
