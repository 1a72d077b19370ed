// Per-stream policy: the built-in table, overridden key by key by telemetry.streams.
import type { Durability, TelemetryConfig } from './types.js';

export interface StreamPolicy {
  priority: number;
  durable: Durability;
  bytesPerSecond: number;
  bytesPerDay: number;
  exempt: boolean;
}

/** Alerts outrank everything, so a burst of metrics can never evict them. */
const BUILT_IN: Record<string, Partial<StreamPolicy>> = {
  alerts: { priority: 9, durable: 'full', exempt: true },
  events: { priority: 6 },
  drift: { priority: 5 },
  metrics: { priority: 3 },
  samples: { priority: 1 },
  // Field examples (agent/learning): the first to go when the disk budget is short. Feedback
  // labels (small; field accuracy is measured by them) rank between metrics and samples.
  feedback: { priority: 2 },
  examples: { priority: 0 },
};

export const DEFAULT_PRIORITY = 4;

export function streamPolicy(config: TelemetryConfig, stream: string): StreamPolicy {
  const b = BUILT_IN[stream] ?? {};
  const c = config.streams?.[stream] ?? {};
  return {
    priority: c.priority ?? b.priority ?? DEFAULT_PRIORITY,
    durable: c.durable ?? b.durable ?? config.synchronous,
    bytesPerSecond: c.bytesPerSecond ?? b.bytesPerSecond ?? 0,
    bytesPerDay: c.bytesPerDay ?? b.bytesPerDay ?? 0,
    exempt: c.exempt ?? b.exempt ?? false,
  };
}
