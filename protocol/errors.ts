// The one catalog of the errors a user or operator can see: the agent's, the fleet link's and
// the controller's, and the tools'. Each code is defined here once, with one HTTP status and one
// sentence that says what to do; HTTP routes, MQTT replies and the CLIs carry the code, so it
// is part of the protocol. Nothing outside this file makes an EDGE_ code
// (test/error-catalog.test.ts); agent/errors.ts re-exports it for the agent.

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

export type ErrorFactory<A extends unknown[]> = ((...args: A) => EdgeError) & { code: string; statusCode: number };

const defined = new Map<string, number>();

/** The one way to make an error code: each code once, with its status and its sentence. */
function define<A extends unknown[]>(
  code: string,
  statusCode: number,
  message: (...args: A) => string,
): ErrorFactory<A> {
  if (defined.has(code)) throw new Error(`error code ${code} is defined twice in the catalog`);
  defined.set(code, statusCode);
  const factory = ((...args: A) => new EdgeError(code, message(...args), statusCode)) as ErrorFactory<A>;
  factory.code = code;
  factory.statusCode = statusCode;
  return factory;
}

/** The HTTP status of a code of the catalog (500 for anything else). */
export function statusOf(code: string): number {
  return defined.get(code) ?? 500;
}

/** Every code of the catalog. */
export function catalogCodes(): string[] {
  return [...defined.keys()];
}

// ---- The agent: config, HTTP API, models, runtime, telemetry, security ----

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
  INTERNAL: define('EDGE_INTERNAL', 500, (what: string) => what),
  FATAL: define('EDGE_FATAL', 500, (what: string) => what),
  BODY_TOO_LARGE: define('EDGE_BODY_TOO_LARGE', 413, (limit: number) =>
    `request body is larger than the limit of ${limit} bytes (health.bodyLimitBytes)`),
  NO_PREVIOUS_VERSION: define('EDGE_NO_PREVIOUS_VERSION', 409, (model: string) =>
    `model ${model} has no previous version to roll back to (models.activate starts an installed version)`),
  VERSION_ROLLED_BACK: define('EDGE_VERSION_ROLLED_BACK', 409, (what: string) => what),
  ONNX_INVALID: define('EDGE_ONNX_INVALID', 400, (what: string) => what),
  NPY_INVALID: define('EDGE_NPY_INVALID', 400, (what: string) => what),
  DRIFT_SPEC_INVALID: define('EDGE_DRIFT_SPEC_INVALID', 400, (what: string) => what),
  FEEDBACK_INVALID: define('EDGE_FEEDBACK_INVALID', 400, (model: string, problem: string) => `feedback for model ${model} refused: ${problem}`),
  ANSWER_NOT_FOUND: define('EDGE_ANSWER_NOT_FOUND', 404, (model: string, id: string, windowSeconds: number) =>
    `model ${model} gave no answer with id ${id} in the last ${windowSeconds} s that can still be labelled (an id comes from an inference answer of this model; answers are remembered for feedback.windowSeconds)`),
  FEEDBACK_DUPLICATE: define('EDGE_FEEDBACK_DUPLICATE', 409, (model: string, id: string) => `answer ${id} of model ${model} is already labelled; a label is taken once`),
  AGENT_UNREACHABLE: define('EDGE_AGENT_UNREACHABLE', 503, (url: string, why: string) =>
    `no agent answers at ${url}: ${why} (is it running? use --url or --config)`),
};

// ---- The wire format (protocol/) ----
export const ProtocolErrors = {
  TELEMETRY_BATCH_INVALID: define('EDGE_TELEMETRY_BATCH_INVALID', 400, (what: string) => `telemetry batch is invalid: ${what}`),
};

// ---- The fleet link (agent/fleet) and the controller. Codes are stable: MQTT replies and models/reported carry them ----
export const FleetErrors = {
  BAD_COMMAND: define('EDGE_FLEET_BAD_COMMAND', 400, (what: string) =>
    `bad command: ${what}; expected JSON {"id": string, "name": string, "args"?: object}`),
  PAYLOAD_TOO_LARGE: define('EDGE_FLEET_PAYLOAD_TOO_LARGE', 413, (size: number, limit: number) =>
    `payload of ${size} bytes is larger than the limit of ${limit} bytes`),
  UNKNOWN_COMMAND: define('EDGE_FLEET_UNKNOWN_COMMAND', 404, (name: string, known: string[]) =>
    `unknown command "${name}"; known: ${known.join(', ')}`),
  BAD_ARGS: define('EDGE_FLEET_BAD_ARGS', 400, (name: string, problems: string) =>
    `bad args for "${name}": ${problems}`),
  UNAVAILABLE: define('EDGE_FLEET_UNAVAILABLE', 503, (what: string) => what),
  COMMAND_FAILED: define('EDGE_FLEET_COMMAND_FAILED', 500, (what: string) => what),
  BAD_DESIRED: define('EDGE_FLEET_BAD_DESIRED', 400, (topic: string, problems: string) =>
    `ignored desired state on ${topic}: ${problems}`),
  OFFLINE: define('EDGE_FLEET_OFFLINE', 503, () => 'not connected to the fleet broker'),
  TIMEOUT: define('EDGE_FLEET_TIMEOUT', 504, (what: string, ms: number) => `${what}: no answer within ${ms} ms`),
  ARTIFACT: define('EDGE_FLEET_ARTIFACT', 502, (what: string) => what),
  CHUNK_HASH: define('EDGE_FLEET_CHUNK_HASH', 502, (index: number, want: string, got: string) =>
    `chunk ${index} failed its sha256 check (expected ${want}, got ${got})`),
  ARTIFACT_HASH: define('EDGE_FLEET_ARTIFACT_HASH', 502, (want: string, got: string) =>
    `downloaded artifact failed its sha256 check (expected ${want}, got ${got})`),
  VERSION_MISMATCH: define('EDGE_FLEET_VERSION_MISMATCH', 409, (desired: string, signed: string) =>
    `the desired ${desired} is a package whose signed manifest says ${signed}; the version a device installs is the one its manifest names: publish the package under that name and version`),
  INSTALL: define('EDGE_FLEET_INSTALL', 500, (why: string) => `install failed: ${why}`),
  /** The controller's artifact service: a request it cannot read. */
  BAD_REQUEST: define('EDGE_FLEET_BAD_REQUEST', 400, (what: string) => what),
  /** The controller's artifact service: no such artifact or chunk. */
  UNKNOWN_ARTIFACT: define('EDGE_FLEET_UNKNOWN_ARTIFACT', 404, (what: string) => what),
  /** The controller's --db: neither a file path nor a postgres:// URL it can use. */
  BAD_DATABASE: define('EDGE_FLEET_BAD_DATABASE', 400, (db: string, why: string) =>
    `--db ${db}: ${why}; expected a SQLite file path or postgres://user@host:port/database`),
  /** edge-fleet dataset: an unknown model or version, nothing to export, a bad --since, a used --out. */
  DATASET: define('EDGE_FLEET_DATASET', 400, (what: string) => what),
  /** The controller's PostgreSQL does not answer or refuses the connection. */
  DATABASE_UNREACHABLE: define('EDGE_FLEET_DATABASE_UNREACHABLE', 503, (where: string, why: string) =>
    `cannot reach the controller database at ${where}: ${why} (is PostgreSQL running and the URL right?)`),
  // Provisioning (docs/provisioning.md): the controller's answers to an enrollment, and the agent's own failure.
  ENROLL_BAD_REQUEST: define('EDGE_ENROLL_BAD_REQUEST', 400, (what: string) =>
    `enrollment request refused: ${what}; expected JSON {"id", "deviceId", "csr": PKCS#10 PEM}`),
  ENROLL_BAD_CSR: define('EDGE_ENROLL_BAD_CSR', 400, (what: string) => `certificate signing request refused: ${what}`),
  ENROLL_TOO_LARGE: define('EDGE_ENROLL_TOO_LARGE', 413, (size: number, limit: number) =>
    `enrollment request of ${size} bytes is larger than the limit of ${limit} bytes`),
  ENROLL_UNKNOWN_CLAIM: define('EDGE_ENROLL_UNKNOWN_CLAIM', 403, (claim: string) =>
    `claim "${claim}" is not enrolled or disabled ("edge-fleet enroll claims" lists them)`),
  ENROLL_REFUSED: define('EDGE_ENROLL_REFUSED', 403, (device: string, why: string) =>
    `enrollment of ${device} refused: ${why}`),
  ENROLL_REVOKED: define('EDGE_ENROLL_REVOKED', 403, (device: string) =>
    `device ${device} is revoked; it gets no certificate ("edge-fleet enroll unrevoke" would allow it again)`),
  ENROLL_RATE_LIMITED: define('EDGE_ENROLL_RATE_LIMITED', 429, (claim: string, limit: number) =>
    `claim "${claim}" reached its limit of ${limit} enrollments per hour; retry later`),
  ENROLL_FAILED: define('EDGE_ENROLL_FAILED', 503, (what: string) => `enrollment failed: ${what}`),
};

// ---- Self-update (agent/update, docs/self-update.md): a release refused, a data format a
// release cannot read, an update or rollback that cannot be done ----
export const UpdateErrors = {
  /** A release artifact refused before anything changed: signature, hashes, arch, version. */
  RELEASE_REFUSED: define('EDGE_UPDATE_RELEASE_REFUSED', 422, (release: string, why: string) =>
    `agent release ${release} refused: ${why}; nothing was changed`),
  /** The data directory's format is newer than a release can read (a rollback refuses). */
  DATA_FORMAT: define('EDGE_UPDATE_DATA_FORMAT', 409, (release: string, why: string) =>
    `agent release ${release} cannot use this data directory: ${why}`),
  /** The install root has no such release, or no current link. */
  NO_RELEASE: define('EDGE_UPDATE_NO_RELEASE', 409, (what: string) => what),
};

// ---- The tools (edge-model): the CLI prints the message alone and exits non-zero ----
// EDGE_PACKAGE_INVALID is the agent's (422) above: a package the tools refuse is the same error.
export const ToolErrors = {
  MODEL_UNREADABLE: define('EDGE_MODEL_UNREADABLE', 400, (what: string) => what),
  MODEL_INVALID: define('EDGE_MODEL_INVALID', 400, (what: string) => what),
  MODEL_UNSUPPORTED: define('EDGE_MODEL_UNSUPPORTED', 400, (what: string) => what),
  DATA_INVALID: define('EDGE_DATA_INVALID', 400, (what: string) => what),
  CALIB_EMPTY: define('EDGE_CALIB_EMPTY', 400, (what: string) => what),
  CALIB_MISMATCH: define('EDGE_CALIB_MISMATCH', 400, (what: string) => what),
  LABELS_INVALID: define('EDGE_LABELS_INVALID', 400, (what: string) => what),
  KEY_INVALID: define('EDGE_KEY_INVALID', 400, (what: string) => what),
  USAGE: define('EDGE_USAGE', 400, (what: string) => what),
};

/** A short text for an unknown thrown value, for logs and replies. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
