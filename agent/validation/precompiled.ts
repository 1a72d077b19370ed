// Schema validators compiled at build time (tools/build-validators.ts writes Ajv standalone
// code beside the compiled schema module in dist/). Importing TypeBox and compiling the config
// and manifest schemas with Ajv was about a third of the daemon's start-up CPU under
// --lite-mode. A generated validator carries the sha256 of the schema module it was built
// from; when that no longer matches (a schema rebuilt without the generator, or running from
// source under tsx, where there is no generated file) the schema is compiled at run time, with
// the same Ajv options, so the errors are the same either way.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ErrorObject, Options } from 'ajv';

export interface Validator<T> {
  (data: unknown): data is T;
  errors?: ErrorObject[] | null;
}

/** What a schema module exports for its validator: the schema and the Ajv options. */
export interface ValidatorSpec {
  schema: object;
  options: Options;
}

export interface LoadedValidator<T> {
  validate: Validator<T>;
  /** The schema as JSON (TypeBox's symbol keys left out). */
  schema: { properties?: Record<string, unknown> };
  precompiled: boolean;
}

/** sha256 of a schema module's compiled text: what a generated validator must have been built from. */
export function sourceHash(file: URL): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Path of the generated validator of a schema module (same folder, `.validator.js`). */
export function generatedFile(schemaModule: URL): URL {
  return new URL(schemaModule.href.replace(/\.[cm]?[jt]s$/, '.validator.js'));
}

interface Generated {
  sourceHash: string;
  schema: LoadedValidator<unknown>['schema'];
  validate: Validator<unknown>;
}

/**
 * The generated validator of `schemaModule` when it is fresh; otherwise `fallback()` (which
 * imports the schema module) compiled with Ajv here.
 */
export async function loadValidator<T>(schemaModule: URL, fallback: () => Promise<ValidatorSpec>): Promise<LoadedValidator<T>> {
  const generated = generatedFile(schemaModule);
  // Under tsx (running from source) neither file exists: agent/**/*.js are not there.
  if (existsSync(generated) && existsSync(schemaModule)) {
    const g = (await import(generated.href)) as Generated;
    if (g.sourceHash === sourceHash(schemaModule)) {
      return { validate: g.validate as Validator<T>, schema: g.schema, precompiled: true };
    }
  }
  const spec = await fallback();
  return { validate: compile<T>(spec), schema: spec.schema as LoadedValidator<T>['schema'], precompiled: false };
}

/** Compiles at run time (Ajv is loaded only on this path). */
export function compile<T>(spec: ValidatorSpec): Validator<T> {
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
  return new Ajv(spec.options).compile(spec.schema) as Validator<T>;
}
