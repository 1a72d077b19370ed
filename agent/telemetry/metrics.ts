// Prometheus metrics of the telemetry buffer, read from stats() at scrape time so they always
// agree with /v1/status. Counters are the buffer's persisted totals (they survive restarts).
import client, { type Registry } from 'prom-client';
import type { TelemetryStats } from './types.js';

export function registerTelemetryMetrics(registry: Registry, source: { stats(): TelemetryStats }): void {
  let cached: { at: number; stats: TelemetryStats } | undefined;
  // One stats() per scrape, shared by all collectors below.
  const stats = (): TelemetryStats => {
    const now = Date.now();
    if (!cached || now - cached.at > 100) cached = { at: now, stats: source.stats() };
    return cached.stats;
  };
  const perStream = (name: string, help: string, pick: (s: TelemetryStats['streams'][string]) => number) =>
    new client.Gauge({
      name, help, labelNames: ['stream'], registers: [registry],
      collect() {
        this.reset();
        for (const [stream, s] of Object.entries(stats().streams)) this.set({ stream }, pick(s));
      },
    });
  const total = (name: string, help: string, pick: (s: TelemetryStats['streams'][string]) => number) =>
    new client.Counter({
      name, help, labelNames: ['stream'], registers: [registry],
      collect() {
        this.reset();
        for (const [stream, s] of Object.entries(stats().streams)) {
          const v = pick(s);
          if (v > 0) this.inc({ stream }, v);
          else this.inc({ stream }, 0);
        }
      },
    });
  perStream('edge_telemetry_queue_records', 'Records queued per stream', (s) => s.depth);
  perStream('edge_telemetry_queue_bytes', 'Bytes queued per stream (payload plus row overhead)', (s) => s.bytes);
  perStream('edge_telemetry_oldest_age_seconds', 'Age of the oldest queued record per stream (s)', (s) => s.oldestAgeSeconds);
  total('edge_telemetry_accepted_total', 'Records accepted by record()', (s) => s.accepted);
  total('edge_telemetry_delivered_total', 'Records acknowledged by the broker and deleted', (s) => s.delivered);
  total('edge_telemetry_quarantined_total', 'Poison records moved to quarantine', (s) => s.quarantined);
  total('edge_telemetry_duplicates_total', 'Records handed out again after a lease lapsed or was nacked', (s) => s.duplicates);
  new client.Counter({
    name: 'edge_telemetry_evicted_total', help: 'Records evicted unsent, by reason (budget, age, ttl, full)',
    labelNames: ['stream', 'reason'], registers: [registry],
    collect() {
      this.reset();
      for (const [stream, s] of Object.entries(stats().streams)) {
        for (const [reason, v] of Object.entries(s.evictedBy)) this.inc({ stream, reason }, v);
      }
    },
  });
  new client.Gauge({
    name: 'edge_telemetry_file_bytes', help: 'Size of the telemetry database file and its WAL (bytes)',
    labelNames: ['file'], registers: [registry],
    collect() {
      const s = stats();
      this.set({ file: 'db' }, s.fileBytes);
      this.set({ file: 'wal' }, s.walBytes);
    },
  });
  new client.Gauge({
    name: 'edge_telemetry_storage_open', help: '1 when the telemetry database is open and accepting writes',
    registers: [registry],
    collect() {
      const s = stats();
      this.set(s.open && !s.failing ? 1 : 0);
    },
  });
}
