import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import type { Config } from './schema.js';
import { Errors, describe } from '../errors.js';
import { loadValidator } from '../validation/precompiled.js';

// Generated at build time; schema.js (and TypeBox) are imported only when it is missing or stale.
const { validate, schema } = await loadValidator<Config>(new URL('./schema.js', import.meta.url), async () => (await import('./schema.js')).ConfigValidation);

/** Environment overrides: EDGE_AGENT__HEALTH__PORT=9090 sets health.port (JSON values are parsed). */
export const ENV_PREFIX = 'EDGE_AGENT__';

function formatError(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(root)' : e.instancePath;
  if (e.keyword === 'additionalProperties') {
    return `${where}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  }
  if (e.keyword === 'required') {
    return `${where}: missing required key "${(e.params as { missingProperty: string }).missingProperty}"`;
  }
  if (e.keyword === 'const') return `${where}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
  return `${where}: ${e.message ?? 'is invalid'}`;
}

/**
 * One line per problem: a choice of constants (a TypeBox union of literals fails as one `const`
 * error per allowed value plus an `anyOf`) becomes "must be one of ...".
 */
export function formatErrors(errors: readonly ErrorObject[]): string[] {
  const choices = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword === 'const') choices.set(e.instancePath, [...(choices.get(e.instancePath) ?? []), (e.params as { allowedValue: unknown }).allowedValue]);
  }
  const out: string[] = [];
  for (const e of errors) {
    const allowed = choices.get(e.instancePath);
    if (allowed && allowed.length > 1) {
      if (e.keyword === 'anyOf') out.push(`${e.instancePath === '' ? '(root)' : e.instancePath}: must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`);
      if (e.keyword === 'const' || e.keyword === 'anyOf') continue;
    }
    out.push(formatError(e));
  }
  return out;
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const keys = name.slice(ENV_PREFIX.length).split('__').map((k) => k.toLowerCase());
    let node: Record<string, unknown> = raw;
    for (let i = 0; i < keys.length; i++) {
      const match = Object.keys(node).find((k) => k.toLowerCase() === keys[i]) ?? camel(keys[i]);
      if (i === keys.length - 1) {
        node[match] = parseEnvValue(value);
      } else {
        if (typeof node[match] !== 'object' || node[match] === null) node[match] = {};
        node = node[match] as Record<string, unknown>;
      }
    }
  }
}

// Keys not present in the file are matched against the schema's spelling.
const knownKeys = collectKeys(schema);
function collectKeys(schema: { properties?: Record<string, unknown> }, out = new Map<string, string>()): Map<string, string> {
  for (const [k, v] of Object.entries(schema.properties ?? {})) {
    out.set(k.toLowerCase(), k);
    collectKeys(v as { properties?: Record<string, unknown> }, out);
  }
  return out;
}
function camel(lower: string): string {
  return knownKeys.get(lower) ?? lower;
}

function parseEnvValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Validates an already-parsed config object. Throws EDGE_CONFIG_INVALID naming every bad path. */
export function parseConfig(raw: unknown, source = '(inline)', baseDir = process.cwd(), env: NodeJS.ProcessEnv = {}): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw Errors.CONFIG_INVALID(source, ['(root): must be a JSON object']);
  }
  const copy = structuredClone(raw) as Record<string, unknown>;
  applyEnv(copy, env);
  if (!validate(copy)) {
    throw Errors.CONFIG_INVALID(source, formatErrors(validate.errors ?? []));
  }
  const config = copy as Config;
  const problems: string[] = [];
  // Cross-field rules, after the schema.
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(config.health.host);
  if (!loopback && !config.health.token) {
    problems.push(`/health/host: binding to ${config.health.host} (not loopback) requires /health/token`);
  }
  const grpcLoopback = ['127.0.0.1', '::1', 'localhost'].includes(config.grpc.host);
  if (config.grpc.port !== undefined && !grpcLoopback && !config.health.token) {
    problems.push(`/grpc/host: serving gRPC on ${config.grpc.host} (not loopback) requires /health/token`);
  }
  if ((config.grpc.cert === undefined) !== (config.grpc.key === undefined)) {
    problems.push('/grpc: give both /grpc/cert and /grpc/key for TLS, or neither');
  }
  if (config.security.commands.requireSignature && config.security.commands.controllerKeys.length === 0) {
    problems.push('/security/commands/controllerKeys: /security/commands/requireSignature is true, so give the controller\'s public key here (or turn requireSignature off)');
  }
  if (config.mqtt.reconnectMaxMs < config.mqtt.reconnectMinMs) {
    problems.push('/mqtt/reconnectMaxMs: must be >= /mqtt/reconnectMinMs');
  }
  if (config.provisioning && (config.mqtt.cert || config.mqtt.key)) {
    problems.push('/provisioning: the device certificate comes from provisioning (dataDir/identity); leave out /mqtt/cert and /mqtt/key');
  }
  if (config.provisioning && (!config.mqtt.ca || !config.mqtt.url)) {
    problems.push('/provisioning: needs /mqtt/url and /mqtt/ca (the fleet CA the broker\'s certificate is checked against)');
  }
  const names = new Set<string>();
  config.models.forEach((m, i) => {
    if (names.has(m.name)) problems.push(`/models/${i}/name: duplicate model name "${m.name}"`);
    names.add(m.name);
    // An example larger than the buffer takes would never be kept: say so at start.
    const perExample = m.capture?.maxBytesPerExample ?? 0;
    if (perExample > config.telemetry.maxRecordBytes) problems.push(`/models/${i}/capture/maxBytesPerExample: ${perExample} is more than /telemetry/maxRecordBytes (${config.telemetry.maxRecordBytes}), the largest record the buffer takes`);
  });
  config.runtime.ensembles.forEach((e, i) => {
    if (names.has(e.name)) problems.push(`/runtime/ensembles/${i}/name: "${e.name}" is already a model name`);
    names.add(e.name);
    for (const m of e.members) if (!config.models.some((x) => x.name === m)) problems.push(`/runtime/ensembles/${i}/members: "${m}" is not a configured model`);
    if (e.fusion === 'weighted' && e.weights?.length !== e.members.length) problems.push(`/runtime/ensembles/${i}/weights: fusion "weighted" needs one weight per member (${e.members.length})`);
    if (e.fusion === 'stacked' && !e.combiner) problems.push(`/runtime/ensembles/${i}/combiner: fusion "stacked" needs a combiner (an ONNX file, e.g. from "edge-model stack")`);
    if (e.fusion !== 'stacked' && e.combiner) problems.push(`/runtime/ensembles/${i}/combiner: a combiner is for fusion "stacked" only (this ensemble's fusion is "${e.fusion}")`);
  });
  config.runtime.shadows.forEach((s, i) => {
    if (!config.models.some((x) => x.name === s.model)) problems.push(`/runtime/shadows/${i}/model: "${s.model}" is not a configured model`);
  });
  if (problems.length) throw Errors.CONFIG_INVALID(source, problems);
  // Paths are relative to the config file, so a config works from any working directory.
  config.dataDir = path.resolve(baseDir, config.dataDir);
  for (const m of config.models) m.package = path.resolve(baseDir, m.package);
  for (const s of config.runtime.shadows) s.package = path.resolve(baseDir, s.package);
  for (const e of config.runtime.ensembles) if (e.combiner) e.combiner = path.resolve(baseDir, e.combiner);
  for (const k of ['cert', 'key'] as const) {
    if (config.grpc[k]) config.grpc[k] = path.resolve(baseDir, config.grpc[k]!);
  }
  for (const k of ['ca', 'cert', 'key'] as const) {
    if (config.mqtt[k]) config.mqtt[k] = path.resolve(baseDir, config.mqtt[k]!);
  }
  if (config.provisioning) {
    config.provisioning.claimCert = path.resolve(baseDir, config.provisioning.claimCert);
    config.provisioning.claimKey = path.resolve(baseDir, config.provisioning.claimKey);
  }
  // Key entries are PEM text or a file path (agent/security/trusted-keys.ts).
  const keyPath = (e: string): string => (e.trimStart().startsWith('-----BEGIN') ? e : path.resolve(baseDir, e));
  config.security.trustedKeys = config.security.trustedKeys.map(keyPath);
  config.security.commands.controllerKeys = config.security.commands.controllerKeys.map(keyPath);
  config.update.trustedKeys = config.update.trustedKeys.map(keyPath);
  if (config.update.root) config.update.root = path.resolve(baseDir, config.update.root);
  return deepFreeze(config);
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw Errors.CONFIG_UNREADABLE(file, describe(err));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw Errors.CONFIG_INVALID(file, [`(root): not valid JSON: ${describe(err)}`]);
  }
  return parseConfig(raw, file, path.dirname(path.resolve(file)), env);
}
