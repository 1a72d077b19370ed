// The test rig every scenario shares: a real Mosquitto on loopback, a fleet controller on its
// own SQLite file, the real agent daemon (dist/) as a child process under a supervisor loop
// (restarted after a crash, as systemd would), and the closing account of what was accepted
// against what the controller stored.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetController } from '../../controller/serve.js';
import { FleetStore } from '../../controller/store.js';
import { spawnAgentWithFile, writeConfig, type AgentProcess } from '../../test/helpers/agent.js';
import { shippedRun } from './shipped.js';
import { destroyMosquitto, startMosquitto, type Broker } from '../../test/helpers/mosquitto.js';
import { FP32 } from '../../test/helpers/model-packages.js';
import { waitFor } from '../../test/helpers/wait.js';
import type { Figures } from './figures.js';
import { MemorySampler } from './procstat.js';

export interface ScenarioOptions {
  /** How long the fault phase lasts (ms). */
  durationMs: number;
  /** Telemetry records per second held by the load (inference runs at a fifth of it). */
  rate: number;
  /**
   * At least this many faults, however long they take: on a loaded machine one restart can
   * take most of the duration, and a test that asks for two must get two.
   */
  minFaults?: number;
  /** Progress lines (the soak prints them; tests keep quiet). */
  log?: (line: string) => void;
}

export const DEVICE = 'rel-dev';

export interface RigOptions {
  persistence?: boolean;
  /** Agent config on top of the default (digits on ort, fleet link to the broker or brokerUrl). */
  agent?: Record<string, unknown>;
  /** Where the agent connects, when not straight to the broker (a proxy). */
  brokerUrl?: (broker: Broker) => string | Promise<string>;
  env?: NodeJS.ProcessEnv;
  /** Node/V8 flags before the script; default shippedRun().nodeArgs, as the systemd unit runs it. */
  nodeArgs?: string[];
  /** Start no controller (slow consumer starts it later). */
  noController?: boolean;
}

export class Rig {
  broker!: Broker;
  store!: FleetStore;
  controller?: FleetController;
  agent!: AgentProcess;
  url = '';
  dir = '';
  file = '';
  restarts = 0;
  readonly samplers: MemorySampler[] = [];
  #ctlDir = mkdtempSync(path.join(tmpdir(), 'edge-rel-ctl-'));
  #cleanup: (() => Promise<void> | void)[] = [];
  /** As the systemd unit runs the agent (its node flags and Environment=), read once per rig. */
  readonly #shipped = shippedRun();

  constructor(readonly opts: RigOptions = {}) {}

  async start(): Promise<this> {
    this.broker = await startMosquitto({ persistence: this.opts.persistence });
    // mosquitto started as root writes its persistence file as user mosquitto
    if (this.opts.persistence) chmodSync(this.broker.dir, 0o777);
    this.store = new FleetStore(path.join(this.#ctlDir, 'fleet.db'));
    if (!this.opts.noController) await this.startController();
    const brokerUrl = this.opts.brokerUrl ? await this.opts.brokerUrl(this.broker) : this.broker.url;
    const user = this.opts.agent ?? {};
    const { mqtt: userMqtt, ...rest } = user as { mqtt?: Record<string, unknown> };
    const { dir, file } = writeConfig({
      deviceId: DEVICE,
      models: [{ name: 'digits', package: FP32, backend: 'ort' }],
      security: { requireSignedPackages: false },
      log: { level: 'info' },
      runtime: { threads: 1 },
      ...rest,
      mqtt: { url: brokerUrl, reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5, ...userMqtt },
    });
    this.dir = dir;
    this.file = file;
    await this.startAgent();
    return this;
  }

  async startController(): Promise<void> {
    this.controller = new FleetController(this.store, { broker: this.broker.url, clientId: 'rel-controller' });
    await this.controller.start();
  }

  async stopController(): Promise<void> {
    await this.controller?.stop();
    this.controller = undefined;
  }

  /** Starts the agent (again) and waits until it is ready; its memory is sampled each second. */
  async startAgent(env: NodeJS.ProcessEnv = {}): Promise<string> {
    const shipped = this.#shipped;
    this.agent = spawnAgentWithFile(this.file, this.dir, { env: { ...shipped.env, ...this.opts.env, ...env }, nodeArgs: this.opts.nodeArgs ?? shipped.nodeArgs });
    this.url = await this.agent.ready(60_000);
    this.samplers.push(new MemorySampler(this.agent.proc.pid!, 1000).start());
    return this.url;
  }

  /** SIGKILL, then the supervisor's restart. */
  async crashAndRestart(): Promise<void> {
    this.agent.kill('SIGKILL');
    await this.agent.exited();
    this.samplers.at(-1)?.stop();
    this.restarts++;
    await this.startAgent();
  }

  peakRssMb(): number {
    return Math.round((Math.max(0, ...this.samplers.map((s) => s.peakRssKb)) / 1024) * 10) / 10;
  }

  onStop(fn: () => Promise<void> | void): void {
    this.#cleanup.push(fn);
  }

  async telemetryStats(): Promise<any> {
    return (await fetch(`${this.url}/v1/telemetry`)).json();
  }

  /** Distinct records the controller stored for the device, and the duplicates it dropped. */
  stored(): { delivered: number; duplicates: number } {
    const s = this.store.telemetrySummary(DEVICE);
    return { delivered: s.reduce((n, r) => n + r.records, 0), duplicates: s.reduce((n, r) => n + r.duplicates, 0) };
  }

  /** Seqs from `seqs` (per stream) the controller does not hold. */
  missing(seqs: Map<string, number[]>): number {
    let n = 0;
    for (const [stream, list] of seqs) {
      const have = new Set(this.store.telemetry(DEVICE, { stream }).map((r) => r.seq));
      n += list.filter((s) => !have.has(s)).length;
    }
    return n;
  }

  /**
   * The closing account, once the link had time to drain: accepted (the agent's persisted
   * counters: every 201 plus what it records itself) - delivered (distinct at the controller)
   * - evicted by policy - quarantined - still queued = lost.
   */
  async account(drainMs = 60_000): Promise<{ accepted: number; delivered: number; evicted: number; quarantined: number; queued: number; lost: number; duplicates: number }> {
    const settled = async (): Promise<boolean> => {
      const st = await this.telemetryStats();
      return st.depth === 0 && this.stored().delivered >= st.accepted - st.evicted - st.quarantined;
    };
    await waitFor(settled, { timeoutMs: drainMs, intervalMs: 200, what: 'the buffer to drain to the controller' }).catch(() => undefined);
    const st = await this.telemetryStats();
    const { delivered, duplicates } = this.stored();
    return {
      accepted: st.accepted, delivered, evicted: st.evicted, quarantined: st.quarantined, queued: st.depth,
      lost: st.accepted - delivered - st.evicted - st.quarantined - st.depth, duplicates,
    };
  }

  async stop(): Promise<void> {
    for (const s of this.samplers) s.stop();
    for (const fn of this.#cleanup.reverse()) await fn();
    this.agent?.kill('SIGTERM');
    await Promise.race([this.agent?.exited(), new Promise((r) => setTimeout(r, 10_000).unref())]);
    this.agent?.kill('SIGKILL');
    await this.stopController().catch(() => undefined);
    this.store?.close();
    await destroyMosquitto(this.broker);
    rmSync(this.#ctlDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Fills in the Figures row from a rig's account. */
export async function figuresOf(rig: Rig, base: Pick<Figures, 'scenario' | 'load' | 'faults'> & { p99Ms?: number; notes?: string; sent?: Map<string, number[]> }, drainMs?: number): Promise<Figures> {
  const a = await rig.account(drainMs);
  const missing = base.sent && a.evicted === 0 && a.quarantined === 0 ? rig.missing(base.sent) : undefined;
  // A negative depth means the buffer's counters disagree with its file: lost cannot be
  // computed, and the row says so instead of printing a 0 it cannot prove.
  const inconsistent = a.queued < 0;
  // accepted - delivered - evicted - queued below 0: records the controller stored whose ack had
  // not reached the agent when its budget evicted them count in both columns. Said, not hidden.
  const overlap = !inconsistent && a.lost < 0 ? `${-a.lost} records counted both delivered and evicted (stored by the controller, evicted before its ack reached the agent)` : '';
  const notes = [base.notes, inconsistent ? `BUFFER COUNTERS INCONSISTENT (depth ${a.queued}): lost not computable` : a.queued ? `${a.queued} still queued` : '', missing ? `${missing} answered-201 seqs missing at the controller` : '', overlap].filter(Boolean).join('; ');
  return {
    scenario: base.scenario, load: base.load, faults: base.faults,
    accepted: a.accepted, delivered: a.delivered, evicted: a.evicted, quarantined: a.quarantined,
    lost: inconsistent ? NaN : Math.max(a.lost, missing ?? 0), duplicates: a.duplicates, peakRssMb: rig.peakRssMb(), p99Ms: base.p99Ms, notes: notes || undefined,
  };
}
