// What never reaches a log line: secrets by key name, and payloads marked sensitive. pino's
// redaction works on paths, so the list names every place a secret can sit in what the
// agent logs (its config, request headers, MQTT options, command arguments).
export const REDACT_PATHS: readonly string[] = [
  'password', '*.password', '*.*.password',
  'token', '*.token', '*.*.token',
  'key', '*.key', '*.*.key',
  'privateKey', '*.privateKey', 'privateKeyPem', '*.privateKeyPem',
  'secret', '*.secret',
  'authorization', '*.authorization', 'req.headers.authorization', 'headers.authorization', 'req.headers.cookie',
  'config.health.token', 'config.mqtt.password', 'config.mqtt.key',
  // Raw inference inputs may be camera frames or personal data.
  'inputs', '*.inputs', 'args.inputs',
];

export const REDACTED = '[redacted]';

const SECRET_KEYS = new Set(['password', 'token', 'key', 'privatekey', 'privatekeypem', 'secret', 'authorization', 'cookie']);

/**
 * A copy of a value with every secret-named key replaced, at any depth, and the payload of
 * any object marked `sensitive: true` removed. For status replies and error details, which
 * pino's path-based redaction does not see.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth > 32 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1)) as T;
  if (value instanceof Error || Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return value;
  // Only plain data is copied. A class instance (fastify's request in its debug-level request
  // log, with the socket and the server behind it) is left to its serializer: walking its
  // graph 32 levels deep took minutes and gigabytes per line.
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const src = value as Record<string, unknown>;
  const sensitive = src.sensitive === true;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(src)) {
    if (SECRET_KEYS.has(k.toLowerCase())) out[k] = REDACTED;
    else if (sensitive && (k === 'payload' || k === 'data' || k === 'args')) out[k] = REDACTED;
    else out[k] = redactSecrets(v, depth + 1);
  }
  return out as T;
}
