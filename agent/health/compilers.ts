// Fastify's schema compilers, loaded with the first route that has a schema. Fastify requires
// @fastify/ajv-compiler (with Ajv) and fast-json-stringify's compiler when the server is
// built: about 250 ms of start-up CPU under --lite-mode before READY=1, and no route of the
// agent has a schema. (With a compilersFactory given, fastify treats the validator as custom:
// a route's headers schema, if one is ever added, must spell its keys in lower case.)
import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

// Resolved from fastify's own folder: these are its dependencies, not ours.
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));

type Builder = (...args: unknown[]) => unknown;

function onFirstUse(id: string): Builder {
  let build: Builder | undefined;
  return (...args) => (build ??= (fromFastify(id) as () => Builder)())(...args);
}

export function lazyCompilers(): NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']> {
  return {
    buildValidator: onFirstUse('@fastify/ajv-compiler') as never,
    buildSerializer: onFirstUse('@fastify/fast-json-stringify-compiler') as never,
  };
}
