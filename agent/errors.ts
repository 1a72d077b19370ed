// One catalog of the errors a user or operator can see. Each has a stable code and a
// sentence that says what to do; HTTP routes and MQTT replies carry the code.

export class EdgeError extends Error {
  readonly code: string;
  readonly statusCode: number;
  readonly details?: unknown;
  constructor(code: string, message: string, statusCode = 500, details?: unknown) {
    super(message);
    this.name = 'EdgeError';
    this.code = code;
    this.statusCode = statusCode;
    this.details = details;
  }
}

type ErrorFactory<A extends unknown[]> = ((...args: A) => EdgeError) & { code: string };

function define<A extends unknown[]>(
  code: string,
  statusCode: number,
  message: (...args: A) => string,
): ErrorFactory<A> {
  const factory = ((...args: A) => new EdgeError(code, message(...args), statusCode)) as ErrorFactory<A>;
  factory.code = code;
  return factory;
}

export const Errors = {
  CONFIG_UNREADABLE: define('EDGE_CONFIG_UNREADABLE', 500, (file: string, why: string) =>
    `cannot read config file ${file}: ${why}`),
  CONFIG_INVALID: define('EDGE_CONFIG_INVALID', 500, (file: string, problems: string[]) =>
    `invalid config file ${file}:\n  ${problems.join('\n  ')}`),
  BAD_REQUEST: define('EDGE_BAD_REQUEST', 400, (what: string) => what),
  NOT_FOUND: define('EDGE_NOT_FOUND', 404, (what: string) => what),
  UNAUTHORIZED: define('EDGE_UNAUTHORIZED', 401, () =>
    'this endpoint needs "Authorization: Bearer <health.token>"'),
  OVERLOADED: define('EDGE_OVERLOADED', 429, (what: string) => `${what}: queue is full, retry later`),
  NOT_READY: define('EDGE_NOT_READY', 503, (why: string) => why),
  PACKAGE_INVALID: define('EDGE_PACKAGE_INVALID', 422, (pkg: string, problem: string) =>
    `model package ${pkg} refused: ${problem}`),
  INPUT_INVALID: define('EDGE_INPUT_INVALID', 400, (model: string, problem: string) =>
    `input for model ${model} refused: ${problem}`),
  MODEL_NOT_FOUND: define('EDGE_MODEL_NOT_FOUND', 404, (model: string, known: string[]) =>
    `no model named "${model}" (serving: ${known.length ? known.join(', ') : 'none'})`),
  MODEL_VERSION_NOT_FOUND: define('EDGE_MODEL_VERSION_NOT_FOUND', 404, (model: string, version: string, serving: string[], held: string[]) =>
    `model ${model} has no version "${version}" serving (serving: ${serving.length ? serving.join(', ') : 'none'}${held.length ? `; held but not serving: ${held.join(', ')}` : ''}); leave the version out to use the one the device chooses`),
  DEADLINE_EXCEEDED: define('EDGE_DEADLINE_EXCEEDED', 504, (what: string) => `${what}: the client's deadline passed before an answer`),
  GRPC_BIND: define('EDGE_GRPC_BIND', 500, (address: string, why: string) =>
    `cannot serve gRPC on ${address}: ${why} (set grpc.host and grpc.port to a free address)`),
  INFERENCE_FAILED: define('EDGE_INFERENCE_FAILED', 500, (model: string, why: string) =>
    `inference of ${model} failed: ${why}`),
  KERNEL_ARGUMENT: define('EDGE_KERNEL_ARGUMENT', 400, (fn: string, problem: string) =>
    `${fn}: ${problem}`),
  NATIVE_UNAVAILABLE: define('EDGE_NATIVE_UNAVAILABLE', 500, (why: string) =>
    `the native addon is not built (${why}); run "npm run build"`),
  TELEMETRY_INVALID: define('EDGE_TELEMETRY_INVALID', 400, (what: string) => `telemetry record refused: ${what}`),
  TELEMETRY_CLOSED: define('EDGE_TELEMETRY_CLOSED', 503, () =>
    'the telemetry buffer is not open (not started yet, or stopped)'),
  TELEMETRY_BACKLOG: define('EDGE_TELEMETRY_BACKLOG', 503, (pending: number, why: string) =>
    `telemetry storage is refusing writes (${why}); ${pending} records wait in memory, new ones are refused until it recovers`),
  TELEMETRY_DISK_FULL: define('EDGE_TELEMETRY_DISK_FULL', 507, (pending: number, why: string) =>
    `the disk holding the telemetry buffer is full (${why}); ${pending} accepted records wait in memory and are written when space frees; new records are refused until then: free space on the device`),
  MODEL_UNSUPPORTED_OPS: define('EDGE_MODEL_UNSUPPORTED_OPS', 422, (model: string, ops: string[]) =>
    `${model} cannot run on the native int8 engine; unsupported: ${ops.join(', ')} (use backend "ort" or "auto")`),
  NATIVE_PLAN_INVALID: define('EDGE_NATIVE_PLAN_INVALID', 422, (why: string) =>
    `the native engine refused the compiled plan: ${why}`),
  PACKAGE_SIGNATURE: define('EDGE_PACKAGE_SIGNATURE', 422, (pkg: string, why: string) =>
    `model package ${pkg} refused: ${why}`),
  KEY_FILE_INSECURE: define('EDGE_KEY_FILE_INSECURE', 500, (file: string, why: string) =>
    `private key file ${file} is not safe to use: ${why}`),
  COMMAND_SIGNATURE: define('EDGE_COMMAND_SIGNATURE', 403, (why: string) =>
    `command refused: ${why}`),
  COMMAND_UNSAFE_ARGUMENT: define('EDGE_COMMAND_UNSAFE_ARGUMENT', 400, (where: string, why: string) =>
    `command refused: ${where} ${why}; commands name things (models, versions), they never carry file paths or URLs`),
};

/** A short text for an unknown thrown value, for logs and replies. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
