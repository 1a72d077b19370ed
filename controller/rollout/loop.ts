// Inside `edge-fleet serve`: carries out the stored rollout plans. Evaluates on every device
// report and on a timer (stage soak times and timeouts need no report to pass).
import type { FleetController } from '../serve.js';
import { RolloutDriver, type RolloutStatus } from './driver.js';
import { ControllerFleetPort, type CommandSigner } from './fleet-port.js';
import { RolloutStore } from './store.js';

export class RolloutLoop {
  /**
   * How long a replica's lease on a rollout lasts without renewal (every pass renews it): a
   * replica that dies is replaced within leaseMs + intervalMs.
   */
  readonly leaseMs: number;
  readonly store: RolloutStore;
  readonly driver: RolloutDriver;
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #again = false;

  constructor(
    ctl: FleetController,
    private readonly log: (msg: string, extra?: Record<string, unknown>) => void = () => undefined,
    private readonly intervalMs = 2000,
    /** Signs the rollback commands the loop sends, for devices that require signed commands. */
    sign?: CommandSigner,
  ) {
    this.store = new RolloutStore(ctl.store.db);
    this.leaseMs = intervalMs * 5;
    const owner = ctl.opts.clientId;
    const port = new ControllerFleetPort(ctl.store, () => ctl.client, () => ctl.protocolVersion, log, sign);
    this.driver = new RolloutDriver(this.store, port, (r, d) => {
      if (d.kind !== 'wait') log(`rollout ${r.id} ${r.model}@${r.version}: ${d.kind}`, d.kind === 'halt' ? { reason: d.reason } : d.kind === 'assign' ? { stage: d.stage + 1, devices: d.devices } : undefined);
    }, (id) => ctl.db.rollouts.lease(id, owner, this.leaseMs));
    ctl.on('reported', () => this.kick());
    ctl.on('status', () => this.kick());
  }

  start(): void {
    this.#timer = setInterval(() => this.kick(), this.intervalMs);
    this.#timer.unref();
    this.kick();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** One evaluation pass, never two at once. */
  kick(): void {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = this.driver.tick().catch((err) => this.log('rollout evaluation failed', { err: String(err) })).finally(() => {
      this.#busy = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  statuses(): RolloutStatus[] {
    return this.store.list().map((r) => this.driver.status(r.id));
  }
}
