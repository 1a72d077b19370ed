// A complete telemetry config from a partial one (tests, benchmarks, tools): the schema's
// defaults filled in, the same way the agent's config loader does it.
import { Value } from '@sinclair/typebox/value';
import { TelemetrySection } from '../config/schema.js';
import type { TelemetryConfig } from './types.js';

export function telemetryConfig(overrides: Partial<TelemetryConfig> = {}): TelemetryConfig {
  const config = Value.Default(TelemetrySection, structuredClone(overrides)) as TelemetryConfig;
  if (!Value.Check(TelemetrySection, config)) {
    const first = [...Value.Errors(TelemetrySection, config)][0];
    throw new Error(`invalid telemetry config at ${first?.path ?? '/'}: ${first?.message ?? 'invalid'}`);
  }
  return config;
}
