// The agent's configuration: one JSON file, one schema, validated once. Every key has a
// default (units beside it); unknown keys are refused. README.md's reference is written
// from this file.
import { Type, type Static } from '@sinclair/typebox';
import { ID_PATTERN, MODEL_NAME, STREAM_NAME } from '../../protocol/names.js';
import type { ValidatorSpec } from '../validation/precompiled.js';

const Strict = { additionalProperties: false } as const;

// Field examples (agent/learning, docs/learning.md): which inferences' inputs and outputs a
// device keeps for retraining. Absent = nothing is kept (feedback labels still are).
export const CapturePolicy = Type.Object({
  confidenceBelow: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'keep an inference whose top-1 score is below this (0 = never)' }),
  shadowDisagreement: Type.Boolean({ default: false, description: 'keep an inference the shadow candidate answered with another top-1 class' }),
  whileDrifting: Type.Boolean({ default: false, description: 'keep inferences while the model\'s latest drift verdict is "alert"' }),
  randomRate: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'keep this share of all inferences at random' }),
  maxBytesPerDay: Type.Integer({ minimum: 0, default: 1024 * 1024, description: 'examples kept per UTC day, in bytes of their records; beyond it none until the next day' }),
  maxBytesPerExample: Type.Integer({ minimum: 256, default: 64 * 1024, description: 'an example whose record is larger is not kept' }),
}, Strict);

// Which backend runs a model: 'partitioned' runs what the native engine supports natively and
// the rest on ONNX Runtime; 'auto' picks by support and, for a partial graph, by timing at warm-up.
const BackendChoiceSchema = Type.Union([Type.Literal('auto'), Type.Literal('ort'), Type.Literal('native'), Type.Literal('partitioned')], { default: 'auto', description: 'auto, ort, native, or partitioned (native segments plus ONNX Runtime for the operators the engine lacks)' });

export const ModelEntry = Type.Object({
  name: Type.String({ pattern: MODEL_NAME.source, description: 'name the model is served under' }),
  package: Type.String({ minLength: 1, description: 'model package folder or .edgepkg archive (relative to the config file)' }),
  backend: BackendChoiceSchema,
  capture: Type.Optional(CapturePolicy),
}, Strict);

// Feedback on answers (POST /v1/models/:name/feedback): how long an answer can still be labelled.
export const FeedbackSection = Type.Object({
  windowSeconds: Type.Integer({ minimum: 1, default: 300, description: 'an answer can be labelled (and its example kept) this long after it was given (s)' }),
  windowEntries: Type.Integer({ minimum: 1, default: 1000, description: 'answers remembered at most for feedback; the oldest are forgotten first' }),
  maxHeldBytes: Type.Integer({ minimum: 0, default: 8 * 1024 * 1024, description: 'memory for the inputs and outputs of answers in the window of models with a capture policy (bytes); beyond it the oldest answers can still be labelled but no longer kept as examples' }),
}, { ...Strict, default: {} });

// The telemetry buffer (agent/telemetry, docs/telemetry.md). Per-stream policy keys have no
// schema default on purpose: a stream named here overrides only the keys it sets, the rest
// come from the built-in policy (alerts 9/full/exempt, events 6, drift 5, metrics 3, feedback 2, samples 1, examples 0).
export const TelemetryStreamPolicy = Type.Object({
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 9, description: 'eviction and send order, 0..9: lowest is evicted first, highest sent first (default: built-in per stream, 4 for unknown streams)' })),
  durable: Type.Optional(Type.Union([Type.Literal('normal'), Type.Literal('full')], { description: 'full = every commit holding a record of this stream is fsynced (survives a power cut); default: full for alerts, else telemetry.synchronous' })),
  bytesPerSecond: Type.Optional(Type.Integer({ minimum: 0, description: 'send budget on the wire (encoded bytes per second); 0 = unlimited (default 0)' })),
  bytesPerDay: Type.Optional(Type.Integer({ minimum: 0, description: 'send budget on the wire (encoded bytes per UTC day); 0 = unlimited (default 0)' })),
  exempt: Type.Optional(Type.Boolean({ description: 'ignore the byte budgets (default: true for alerts)' })),
}, Strict);

export const TelemetrySection = Type.Object({
  maxBytes: Type.Integer({ minimum: 64 * 1024, default: 64 * 1024 * 1024, description: 'disk budget of the buffer (bytes, WAL excluded)' }),
  maxAgeSeconds: Type.Integer({ minimum: 0, default: 7 * 24 * 3600, description: 'records older than this are evicted (s); 0 keeps them until sent' }),
  file: Type.String({ minLength: 1, default: 'telemetry.db', description: 'database file name, relative to dataDir' }),
  synchronous: Type.Union([Type.Literal('normal'), Type.Literal('full')], { default: 'normal', description: 'normal: a committed record survives a crash of the agent, the last commits may be lost on power failure; full: fsync on every commit (survives power failure, slower)' }),
  commitIntervalMs: Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'group commit: longest a record waits in memory before its transaction (ms)' }),
  commitMaxRecords: Type.Integer({ minimum: 1, maximum: 100_000, default: 512, description: 'group commit: a batch this large is committed at once' }),
  maxRecordBytes: Type.Integer({ minimum: 256, default: 256 * 1024, description: 'largest encoded payload of one record (bytes); larger is refused by record()' }),
  maxPendingRecords: Type.Integer({ minimum: 100, default: 100_000, description: 'records held in memory while the disk refuses writes; beyond this record() refuses new records' }),
  leaseTimeoutSeconds: Type.Integer({ minimum: 1, default: 60, description: 'an un-acked lease returns its records to the queue after this long (s)' }),
  maxQuarantineRecords: Type.Integer({ minimum: 0, default: 1000, description: 'poison records kept for inspection; older ones are dropped' }),
  burstSeconds: Type.Integer({ minimum: 1, default: 10, description: 'how many seconds of bytesPerSecond may be saved up and sent at once' }),
  streams: Type.Record(Type.String({ pattern: STREAM_NAME.source }), TelemetryStreamPolicy, { additionalProperties: false, default: {}, description: `per-stream policy, overriding the built-in one key by key; stream names match ${STREAM_NAME.source}` }),
}, { ...Strict, default: {} });

// Drift detection (agent/drift, docs/drift.md). Thresholds here override the model
// package's (which override the built-in defaults); leave them out to keep the package's.
export const DriftSection = Type.Object({
  enabled: Type.Boolean({ default: true, description: 'profile inferences and report drift for models whose package has a drift reference' }),
  windowInferences: Type.Integer({ minimum: 10, default: 1000, description: 'a window closes after this many observed inferences (batch items)' }),
  windowSeconds: Type.Integer({ minimum: 1, default: 3600, description: 'a window closes after this long, whichever comes first (s)' }),
  minWindowSize: Type.Integer({ minimum: 1, default: 100, description: 'a window with fewer observations is reported as "insufficient", without a verdict' }),
  sampleEvery: Type.Integer({ minimum: 1, default: 16, description: 'profile one inference in this many (1 = every one); 16 keeps drift monitoring of the digits model within 5% of its native inference time (npm run bench:drift)' }),
  sketchK: Type.Integer({ minimum: 16, maximum: 4096, default: 200, description: 'KLL sketch size per numeric feature of a window (rank error within 3/k; memory about 3k numbers, 4 bytes each in a report)' }),
  thresholds: Type.Object({
    falseWarnRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'target share of windows of in-distribution data that warn (default 0.01); every statistic is held to its calibrated null at the window\'s size, corrected for the number of features x statistics tested' })),
    falseAlertRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'target share of such windows that alert (default 0.001)' })),
    datasetDriftShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'share of drifting input features that makes the dataset drifted (default 0.5)' })),
    psiWarn: Type.Optional(Type.Number({ minimum: 0, description: 'a fixed PSI warning level instead of the calibrated one, whatever the window size (default: none)' })),
    psiAlert: Type.Optional(Type.Number({ minimum: 0, description: 'a fixed PSI alert level instead of the calibrated one (default: none)' })),
    jensenShannon: Type.Optional(Type.Number({ minimum: 0, description: 'a fixed Jensen-Shannon distance level instead of the calibrated one (default: none)' })),
    wasserstein: Type.Optional(Type.Number({ minimum: 0, description: 'a fixed normalised Wasserstein-1 level instead of the calibrated one (default: none)' })),
  }, { ...Strict, default: {}, description: 'overrides of the model package thresholds' }),
  detectors: Type.Object({
    adwinDelta: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.002, description: 'ADWIN confidence' }),
    pageHinkleyDelta: Type.Number({ minimum: 0, default: 0.005, description: 'Page-Hinkley tolerated change' }),
    pageHinkleyThreshold: Type.Number({ exclusiveMinimum: 0, default: 50, description: 'Page-Hinkley detection threshold (in units of the stream: confidence, ms)' }),
    pageHinkleyMinSamples: Type.Integer({ minimum: 1, default: 30, description: 'Page-Hinkley stays quiet for this many values after a (re)start' }),
  }, { ...Strict, default: {} }),
}, { ...Strict, default: {} });

// The inference runtime (agent/runtime, docs/model-package.md): ONNX Runtime session options,
// per-model queues, warm-up, ensembles and shadow runs.
export const RuntimeSection = Type.Object({
  threads: Type.Integer({ minimum: 0, maximum: 64, default: 0, description: 'intra-op threads of one inference (an ONNX Runtime session or the native engine); 0 = one per core' }),
  graphOptimizationLevel: Type.Union([Type.Literal('disabled'), Type.Literal('basic'), Type.Literal('extended'), Type.Literal('all')], { default: 'all', description: 'ONNX Runtime graph optimisation level' }),
  offThreadAboveMs: Type.Number({ minimum: 0, maximum: 60_000, default: 2, description: 'an ONNX Runtime model whose warm-up run (timed at load) takes longer than this (ms) is served from a worker thread of its own, so its inferences never hold the event loop; cheaper ones run on the main thread, where a thread hop would cost more; 0 = every ONNX Runtime model on a worker thread' }),
  offThreadNice: Type.Integer({ minimum: 0, maximum: 19, default: 5, description: 'niceness of those worker threads and of ONNX Runtime\'s threads under them (Linux sets it per thread): above 0, when inference keeps every core busy the event loop (health checks, MQTT keepalives, telemetry intake) still gets the CPU first; the price is inference latency only when other processes compete for the cores (a rollout\'s latency probation compares versions); 0 = the process\'s priority' }),
  queueLimit: Type.Integer({ minimum: 1, maximum: 100_000, default: 64, description: 'requests waiting per model (in flight besides the running one, counted from their headers); beyond this the API answers 429 before reading the body' }),
  queueWaitFactor: Type.Number({ minimum: 0, maximum: 1000, default: 0, description: 'latency-aware admission (off by default): a request is answered 429 (before its body is read) when its expected wait, requests in flight x the model\'s recent mean service time (ms), exceeds this multiple of its recent p99 service time; admitted latency then stays within about (1 + factor) x the unloaded latency (1 keeps it near 2x); 0 = only queueLimit applies' }),
  maxQueueWaitMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 0, description: 'a fixed budget for the expected wait (ms), used instead of queueWaitFactor; 0 = use queueWaitFactor' }),
  maxRequestAgeMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 0, description: 'a request whose x-request-start header (the client\'s send time, ms since the epoch; clients on the device share its clock) is older than this when the agent reads its headers is answered 429 without reading the body: it waited unread while the agent was saturated (ms); 0 = ignore the header' }),
  warmup: Type.Integer({ minimum: 1, maximum: 100, default: 1, description: 'inferences a newly loaded version runs before it is ready and serves' }),
  maxElements: Type.Integer({ minimum: 1, default: 16 * 1024 * 1024, description: 'largest number of elements in one input tensor of a request' }),
  ensembles: Type.Array(Type.Object({
    name: Type.String({ pattern: MODEL_NAME.source, description: 'name the ensemble is served under' }),
    members: Type.Array(Type.String({ minLength: 1 }), { minItems: 2, description: 'names of configured models with the same inputs and number of classes' }),
    fusion: Type.Union([Type.Literal('mean'), Type.Literal('weighted'), Type.Literal('vote'), Type.Literal('stacked')], { default: 'mean', description: 'mean of scores, weighted mean of scores, majority vote of top-1 classes, or stacked: a learned combiner over the members\' concatenated scores' }),
    weights: Type.Optional(Type.Array(Type.Number({ minimum: 0 }), { description: 'one per member, for fusion "weighted"' })),
    combiner: Type.Optional(Type.String({ minLength: 1, description: 'for fusion "stacked" (and only then): ONNX file (relative to the config file) mapping the members\' concatenated scores [N, members x classes] to class logits [N, classes], e.g. from "edge-model stack"' })),
  }, Strict), { default: [], description: 'models served as the fusion of other models' }),
  shadows: Type.Array(Type.Object({
    model: Type.String({ minLength: 1, description: 'configured model whose requests are mirrored' }),
    package: Type.String({ minLength: 1, description: 'candidate package folder or .edgepkg (relative to the config file)' }),
    fraction: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'share of requests also run on the candidate, off the request path' }),
    backend: BackendChoiceSchema,
  }, Strict), { default: [], description: 'candidate versions compared with the active one; agreement goes to telemetry stream "shadow"' }),
}, { ...Strict, default: {} });

// Security (agent/security, docs/security.md): who may sign model packages and commands.
const KeyList = (description: string) => Type.Array(Type.String({ minLength: 1 }), { default: [], description });
export const SecuritySection = Type.Object({
  trustedKeys: KeyList('ed25519 public keys whose signature a model package must carry: PEM text, or a path to a PEM file (relative to the config file); list the old and the new key together while rotating'),
  requireSignedPackages: Type.Boolean({ default: true, description: 'refuse model packages that are unsigned, signed by a key not in trustedKeys, or changed after signing' }),
  commands: Type.Object({
    requireSignature: Type.Boolean({ default: false, description: 'accept only fleet commands signed by a controller key (on top of the broker ACL)' }),
    controllerKeys: KeyList('ed25519 public keys of the controller for signed commands: PEM text or a path to a PEM file'),
    maxSkewSeconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 300, description: 'a signed command whose timestamp is further than this from the device clock is refused; ids are remembered this long against replays (s)' }),
  }, { ...Strict, default: {} }),
}, { ...Strict, default: {} });

// Safe activation of new model versions (agent/rollout): probation, crash-loop rollback, shadow gate.
export const RolloutSection = Type.Object({
  probation: Type.Object({
    minInferences: Type.Integer({ minimum: 0, default: 200, description: 'inferences a new version must serve before it is committed' }),
    minSeconds: Type.Number({ minimum: 0, default: 60, description: 'least time on probation (s)' }),
    maxErrorRate: Type.Number({ minimum: 0, maximum: 1, default: 0.01, description: 'a higher share of failed inferences rolls the version back' }),
    maxLatencyRatio: Type.Number({ minimum: 1, default: 3, description: 'p99 latency above this multiple of the previous version rolls back' }),
    failOnNonFinite: Type.Boolean({ default: true, description: 'an output with NaN or Infinity rolls back at once' }),
    maxRestarts: Type.Integer({ minimum: 0, default: 1, description: 'unclean restarts tolerated during probation; one more is a crash loop and rolls back' }),
  }, { ...Strict, default: {} }),
  shadow: Type.Object({
    fraction: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'when > 0, a new version first runs in shadow on this share of requests and is promoted only after the gate below' }),
    minAgreement: Type.Number({ minimum: 0, maximum: 1, default: 0.98, description: 'top-1 agreement with the active version needed to promote' }),
    minSamples: Type.Integer({ minimum: 1, default: 500, description: 'shadowed requests needed before the gate decides' }),
  }, { ...Strict, default: {} }),
}, { ...Strict, default: {} });

// Provisioning by claim and certificate rotation (agent/fleet/identity.ts, docs/provisioning.md).
export const ProvisioningSection = Type.Object({
  claimCert: Type.String({ minLength: 1, description: 'the batch\'s claim certificate (PEM) from "edge-fleet enroll claim"; it may only ask for a device certificate' }),
  claimKey: Type.String({ minLength: 1, description: 'the claim\'s private key (PEM); must not be readable by others' }),
  requestTimeoutMs: Type.Integer({ minimum: 100, default: 30_000, description: 'how long to wait for the controller\'s answer to an enrollment or renewal before asking again (ms)' }),
  retryMs: Type.Integer({ minimum: 100, default: 60_000, description: 'pause before enrolling again after a refusal or a failed attempt (ms)' }),
  renewAt: Type.Number({ minimum: 0.1, maximum: 0.95, default: 0.66, description: 'renew the device certificate when this share of its lifetime has passed' }),
  renewJitter: Type.Number({ minimum: 0, maximum: 0.5, default: 0.1, description: 'renew up to this share of the lifetime earlier, at random, so a batch does not renew at once' }),
}, { ...Strict, description: 'when set, the device gets its own certificate from the controller (in dataDir/identity) instead of mqtt.cert/mqtt.key' });

export const ConfigSchema = Type.Object({
  deviceId: Type.String({ pattern: ID_PATTERN.source, description: 'unique id of this device; used in MQTT topics' }),
  dataDir: Type.String({ minLength: 1, description: 'state directory (SQLite buffer, installed models); relative to the config file' }),
  shutdownTimeoutMs: Type.Integer({ minimum: 100, default: 10_000, description: 'longest a clean shutdown may take before the agent exits anyway (ms)' }),
  log: Type.Object({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  }, { ...Strict, default: {} }),
  health: Type.Object({
    host: Type.String({ default: '127.0.0.1', description: 'bind address; anything but loopback requires health.token' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: '0 picks a free port' }),
    token: Type.Optional(Type.String({ minLength: 16, description: 'bearer token required on every route but /healthz when set' })),
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 8 * 1024 * 1024, description: 'largest request body (bytes); larger gets 413' }),
    requestTimeoutMs: Type.Integer({ minimum: 100, default: 30_000, description: 'a request that takes longer is cut (ms)' }),
  }, { ...Strict, default: {} }),
  // The Open Inference Protocol over gRPC (agent/inference-protocol, docs/inference.md).
  grpc: Type.Object({
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'port of the gRPC inference service (inference.GRPCInferenceService; Triton uses 8001); unset = no gRPC server; 0 picks a free port' })),
    host: Type.String({ default: '127.0.0.1', description: 'bind address; anything but loopback requires health.token, sent by clients as "authorization: Bearer <token>" metadata' }),
    maxMessageBytes: Type.Integer({ minimum: 1024, maximum: 256 * 1024 * 1024, default: 8 * 1024 * 1024, description: 'largest request or response message (bytes); a larger one gets RESOURCE_EXHAUSTED' }),
    cert: Type.Optional(Type.String({ description: 'TLS server certificate file (PEM, chain included); with grpc.key the service speaks TLS only' })),
    key: Type.Optional(Type.String({ description: 'TLS private key file (PEM); must not be readable by others' })),
  }, { ...Strict, default: {} }),
  update: Type.Object({
    root: Type.Optional(Type.String({ minLength: 1, description: 'install root of a self-updating agent (releases/ and the current link, docs/self-update.md), e.g. /opt/edge-agent; without it the agent does not update itself' })),
    gateTimeoutMs: Type.Integer({ minimum: 1000, default: 120_000, description: 'a new release must be ready (models served, broker connected when mqtt.url is set) this soon after its start, or it is rolled back (ms)' }),
    maxStarts: Type.Integer({ minimum: 1, maximum: 100, default: 3, description: 'starts of a new release without passing the health gate before the boot guard rolls back (crash loop)' }),
    trustedKeys: KeyList('ed25519 public keys an agent release must be signed by (PEM text or file); when empty, security.trustedKeys'),
  }, { ...Strict, default: {} }),
  mqtt: Type.Object({
    url: Type.Optional(Type.String({ pattern: '^(mqtts?|wss?|tcp|ssl)://', description: 'fleet broker; without it the agent runs offline and buffers' })),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    ca: Type.Optional(Type.String({ description: 'CA certificate file (PEM) for mqtts://' })),
    cert: Type.Optional(Type.String({ description: 'client certificate file (PEM)' })),
    key: Type.Optional(Type.String({ description: 'client private key file (PEM); must not be readable by others' })),
    groups: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), { default: [], description: 'fleet groups whose desired state this device follows' }),
    keepaliveSeconds: Type.Integer({ minimum: 5, maximum: 3600, default: 30 }),
    reconnectMinMs: Type.Integer({ minimum: 10, default: 1000, description: 'first reconnect cap (ms): each delay is uniform in [0, cap] (full jitter) and the cap doubles up to reconnectMaxMs' }),
    reconnectMaxMs: Type.Integer({ minimum: 10, default: 60_000, description: 'largest reconnect cap (ms); also the cap used at once after the broker answers server busy, quota exceeded or connection rate exceeded' }),
    stableAfterMs: Type.Integer({ minimum: 0, default: 10_000, description: 'the reconnect backoff starts again from reconnectMinMs only after a connection has lasted this long (ms), so a broker that accepts and drops connections is not hammered' }),
    backlogSpreadMs: Type.Integer({ minimum: 0, default: 5000, description: 'after a (re)connection the telemetry backlog waits a random share of this window (ms; at most reconnectMaxMs), so a fleet reconnecting together does not send its backlogs at once; 0 = at once' }),
    connectTimeoutMs: Type.Integer({ minimum: 100, default: 15_000, description: 'a connect attempt without CONNACK by then is dropped and retried (ms)' }),
    protocolVersion: Type.Union([Type.Literal(5), Type.Literal(4)], { default: 5, description: '5 = MQTT 5 (falls back to 3.1.1 when refused), 4 = MQTT 3.1.1' }),
    inflight: Type.Integer({ minimum: 1, maximum: 256, default: 8, description: 'telemetry batches published and not yet confirmed (see telemetryAck) at once' }),
    telemetryAck: Type.Union([Type.Literal('controller'), Type.Literal('broker')], { default: 'controller', description: 'what confirms a telemetry batch (deletes it from the buffer): "controller" = the controller\'s ack after its database commit (survives a broker restart without persistence); "broker" = the PUBACK (for controllers that do not ack)' }),
    ackTimeoutMs: Type.Integer({ minimum: 100, default: 15_000, description: 'telemetryAck "controller": a batch without an ack after this long is sent again (ms)' }),
    ackRetryMaxMs: Type.Integer({ minimum: 100, default: 60_000, description: 'telemetryAck "controller": longest pause before a re-send while acks are missing (ms); one batch at a time until an ack comes' }),
    drainRecordsPerSecond: Type.Integer({ minimum: 1, default: 5000, description: 'telemetry drain rate after an outage (records/s), so a backlog does not flood the link' }),
    batchMaxBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 256 * 1024, description: 'largest telemetry message (encoded bytes, after gzip); a record that could not fit one alone is refused when recorded' }),
    maxCommandBytes: Type.Integer({ minimum: 256, default: 64 * 1024, description: 'largest accepted command payload (bytes); larger gets an error reply' }),
    downloadWindow: Type.Integer({ minimum: 1, maximum: 64, default: 8, description: 'model artifact chunk requests outstanding at once' }),
    requestTimeoutMs: Type.Integer({ minimum: 100, default: 15_000, description: 'how long to wait for an artifact chunk or manifest before asking again (ms)' }),
  }, { ...Strict, default: {} }),
  models: Type.Array(ModelEntry, { default: [] }),
  runtime: RuntimeSection,
  telemetry: TelemetrySection,
  security: SecuritySection,
  drift: DriftSection,
  rollout: RolloutSection,
  feedback: FeedbackSection,
  provisioning: Type.Optional(ProvisioningSection),
}, Strict);

export type Config = Static<typeof ConfigSchema>;
export type ModelConfig = Static<typeof ModelEntry>;
export type CaptureConfig = Static<typeof CapturePolicy>;

/** The config validator: compiled at build time (tools/build-validators.ts), loaded by load.ts. */
export const ConfigValidation: ValidatorSpec = { schema: ConfigSchema, options: { allErrors: true, useDefaults: true, strict: false } };
