// The name rules of the fleet protocol, each written once (docs/protocol.md, "Names"). The
// agent, the controller, the config schema and the JSON schemas all use these: a schema that
// needs the rule as a string takes its `.source`.

/** Device ids and group names: safe as one topic level (no wildcards, no slashes). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/**
 * Telemetry stream names: one topic level, and a key of the config's telemetry.streams. The
 * agent has only ever accepted these (POST /v1/telemetry/:stream, record(), the config), so
 * every stream a device sends matches it.
 */
export const STREAM_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** Model (and ensemble) names: what a model is served and published under. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Model versions: semantic versions in practice. */
export const MODEL_VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
