// bench:fleet — fleet sync throughput against a local Mosquitto, side by side with the
// named references in the same run:
//  1. telemetry records/s delivered end to end (record() -> SQLite buffer -> batch -> broker
//     PUBACK -> controller stored, de-duplicated) vs a bare mqtt.js QoS 1 publish loop of one
//     record per message (received by a subscriber). Batching must be >= 5x.
//  2. model delivery MB/s for a 10 MB artifact over the broker (chunk requests, sha256 per
//     chunk and whole, written to disk) vs `mosquitto_pub -f` of the same file (one message).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { downloadArtifact } from '../agent/models/download.js';
import { storeArtifact } from '../controller/publish.js';
import { destroyMosquitto, startMosquitto } from '../test/helpers/mosquitto.js';
import { waitFor } from '../test/helpers/wait.js';
import { makeAgent, startAgent, tempDir } from '../test/fleet-support.js';
import { FleetStore } from '../controller/store.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const RECORDS = Number(process.env.BENCH_FLEET_RECORDS ?? 20_000);
const BARE_RECORDS = Number(process.env.BENCH_FLEET_BARE_RECORDS ?? 3_000);
const ARTIFACT_MB = 10;
/** Telemetry message size limit; default: the agent's default (mqtt.batchMaxBytes). */
const BATCH_BYTES = process.env.BENCH_FLEET_BATCH_BYTES ? Number(process.env.BENCH_FLEET_BATCH_BYTES) : undefined;

const record = (i: number): Record<string, unknown> => ({ i, model: 'digits', latencyMs: 3.2 + (i % 7) / 10, class: i % 10, confidence: 0.9 });
const ROUNDS = 3;
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function bareLoop(url: string, n: number, window: number): Promise<number> {
  const sub = await mqtt.connectAsync(url, { clientId: `bench-sub-${window}`, protocolVersion: 5 });
  let got = 0;
  sub.on('message', () => got++);
  await sub.subscribeAsync(`bench/bare/${window}`, { qos: 1 });
  const pub = await mqtt.connectAsync(url, { clientId: `bench-pub-${window}`, protocolVersion: 5 });
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await pub.publishAsync(`bench/bare/${window}`, JSON.stringify({ seq: i, ts: Date.now(), p: record(i) }), { qos: 1 });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  await waitFor(() => got >= n, { timeoutMs: 120_000, what: 'bare messages received' });
  const s = (performance.now() - t0) / 1000;
  await pub.endAsync();
  await sub.endAsync();
  return n / s;
}

async function main(): Promise<void> {
  const broker = await startMosquitto();
  const work = tempDir('edge-bench-fleet-');
  try {
    // --- 1. telemetry ----------------------------------------------------------------
    // Rounds alternate the two sides, so a busy machine slows both alike; medians are printed.
    // The controller runs as its own process (`edge-fleet serve`), as it does in a fleet.
    const dbFile = path.join(work.dir, 'fleet.db');
    const serve = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'controller/cli.ts'), 'serve', '--broker', broker.url, '--db', dbFile, '--id', 'bench-ctl'],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, EDGE_FLEET_CLI: '1' } });
    let serveOut = '';
    serve.stdout!.on('data', (d) => (serveOut += d));
    await waitFor(() => serveOut.includes('"ready":true'), { timeoutMs: 60_000, what: 'edge-fleet serve ready' });
    const ctl = { store: new FleetStore(dbFile), stop: async () => { serve.kill('SIGTERM'); await new Promise((r) => serve.once('exit', r)); } };
    const drains: number[] = [];
    const seqs: number[] = [];
    const wins: number[] = [];
    const recordRates: number[] = [];
    let batches = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Drain after an outage: the records wait in the buffer, the link comes up; the clock
      // runs until the controller has stored every one and the buffer is empty (all PUBACKed).
      const device = `bench-dev-${round}`;
      const agentDir = path.join(work.dir, device);
      const offline = makeAgent(undefined, device, {}, agentDir);
      await offline.agent.start();
      const r0 = performance.now();
      for (let i = 0; i < RECORDS; i++) {
        offline.agent.telemetry.record('metrics', record(i));
        if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
      }
      await offline.agent.telemetry.flush();
      recordRates.push(RECORDS / ((performance.now() - r0) / 1000));
      await offline.stop();
      const online = makeAgent(broker.url, device, { mqtt: { drainRecordsPerSecond: 100_000_000, inflight: 8, ...(BATCH_BYTES ? { batchMaxBytes: BATCH_BYTES } : {}) } }, agentDir);
      const started = online.agent.start();
      // The clock starts when the link is up (agent start-up is not delivery).
      await waitFor(() => online.link.state === 'connected', { timeoutMs: 60_000, intervalMs: 1, what: 'the link up' });
      const t0 = performance.now();
      await started;
      await waitFor(() => ctl.store.telemetrySummary(device).reduce((n, s) => n + s.records, 0) >= RECORDS && online.agent.telemetry.stats().depth === 0,
        { timeoutMs: 300_000, intervalMs: 10, what: 'all records stored and acked' });
      drains.push(RECORDS / ((performance.now() - t0) / 1000));
      batches += ctl.store.telemetrySummary(device).reduce((n, s) => n + s.batches, 0);
      await online.stop();
      seqs.push(await bareLoop(broker.url, BARE_RECORDS, 1));
      wins.push(await bareLoop(broker.url, BARE_RECORDS, 8));
    }
    const batched = median(drains);
    const best = Math.max(median(seqs), median(wins));
    const list = (xs: number[]): string => xs.map(fmt).join(', ');
    console.log(`telemetry drain, end to end (buffer -> batch -> broker PUBACK + ack -> controller stored, de-duplicated): ${fmt(batched)} records/s (median of ${ROUNDS}: ${list(drains)}; ${fmt(RECORDS)} records per round, ${(ROUNDS * RECORDS / batches).toFixed(0)} per message)`);
    console.log(`bare mqtt.js QoS 1 loop, one record per message, await each PUBACK:           ${fmt(median(seqs))} records/s (median of ${ROUNDS}: ${list(seqs)}; ${fmt(BARE_RECORDS)} messages per round)`);
    console.log(`bare mqtt.js QoS 1 loop, one record per message, 8 in flight:                 ${fmt(median(wins))} records/s (median of ${ROUNDS}: ${list(wins)})`);
    console.log(`ratio batched drain / best bare loop: ${(batched / best).toFixed(1)}x (target >= 5x: ${batched / best >= 5 ? 'met' : 'NOT met'})`);
    console.log(`for context: record() alone into the SQLite buffer ${fmt(median(recordRates))} records/s`);

    // --- 2. model delivery -----------------------------------------------------------
    const bytes = randomBytes(ARTIFACT_MB * 1024 * 1024);
    const file = path.join(work.dir, 'artifact.bin');
    writeFileSync(file, bytes);
    const art = storeArtifact(ctl.store, bytes, { name: 'bench', version: '1.0.0' }); // served by the edge-fleet process from the shared database
    const dev = await startAgent(broker.url, 'bench-dl');
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) {
      const partial = path.join(work.dir, `dl-${r}.partial`);
      const s0 = performance.now();
      await downloadArtifact((b, t) => dev.link.artifactRequest(b, t), { sha256: art.sha256, size: art.size }, partial,
        { window: dev.agent.config.mqtt.downloadWindow, timeoutMs: 30_000, attempts: 3 });
      runs.push(ARTIFACT_MB / ((performance.now() - s0) / 1000));
      rmSync(partial);
    }
    await dev.stop();

    const sub = await mqtt.connectAsync(broker.url, { clientId: 'bench-file-sub', protocolVersion: 5 });
    const ref: number[] = [];
    for (let r = 0; r < 3; r++) {
      let got: Buffer | undefined;
      const onMsg = (_t: string, p: Buffer): void => { got = p; };
      sub.on('message', onMsg);
      await sub.subscribeAsync('bench/file', { qos: 1 });
      const s0 = performance.now();
      const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', 'bench/file', '-f', file], { stdio: 'ignore' });
      await waitFor(() => got && got.length === bytes.length, { timeoutMs: 60_000, intervalMs: 2, what: 'the file at the subscriber' });
      ref.push(ARTIFACT_MB / ((performance.now() - s0) / 1000));
      await new Promise((res) => (p.exitCode !== null ? res(null) : p.once('exit', res)));
      sub.removeListener('message', onMsg);
    }
    await sub.endAsync();
    console.log(`model delivery, ${ARTIFACT_MB} MB over the broker (${art.chunks.length} chunks of ${art.chunkSize / 1024} KiB, ${8} in flight, sha256 per chunk + whole, to disk): ${median(runs).toFixed(1)} MB/s (median of 3: ${runs.map((x) => x.toFixed(1)).join(', ')})`);
    console.log(`mosquitto_pub -f of the same file (one message, QoS 1, to a subscriber in memory):                                ${median(ref).toFixed(1)} MB/s (median of 3: ${ref.map((x) => x.toFixed(1)).join(', ')})`);
    console.log(`ratio chunked delivery / mosquitto_pub -f: ${(median(runs) / median(ref)).toFixed(2)}x`);
    await ctl.stop();
  } finally {
    await destroyMosquitto(broker);
    work.remove();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
