// `edge-fleet serve --db postgres://...`: the controller on PostgreSQL. Replicas share the
// database; MQTT 5 shared subscriptions divide the device messages between them; each rollout
// is carried out by the replica holding its lease (taken over within LEASE_MS + TICK_MS when
// that replica dies). With --http each replica serves the dashboard from the shared
// database: its live stream reads the database again on a timer, since a replica receives only
// its share of the device messages (controller/dashboard/controller-dashboard.ts).
import type { BrokerTls } from './broker-tls.js';
import { FleetController } from './serve.js';
import { PostgresControllerStore } from './store/postgres.js';
import { RolloutDriver } from './rollout/driver.js';
import { ControllerFleetPort, type CommandSigner } from './rollout/fleet-port.js';
import { startControllerDashboard } from './dashboard/controller-dashboard.js';

const TICK_MS = 2000;
const LEASE_MS = 10_000;

/** Evaluates the rollouts on a timer and on every device report, one pass at a time. */
function startRollouts(ctl: FleetController<PostgresControllerStore>, log: Log, sign?: CommandSigner): () => void {
  const port = new ControllerFleetPort(ctl.store, () => ctl.client, () => ctl.protocolVersion, log, sign);
  const driver = new RolloutDriver(ctl.db.rollouts, port, (r, d) => {
    if (d.kind !== 'wait') log(`rollout ${r.id} ${r.model}@${r.version}: ${d.kind}`);
  }, (id) => ctl.db.rollouts.lease(id, ctl.opts.clientId, LEASE_MS));
  let busy = false;
  let again = false;
  const kick = (): void => {
    if (busy) { again = true; return; }
    busy = true;
    driver.tick().catch((err) => log('rollout evaluation failed', { err: String(err) })).finally(() => {
      busy = false;
      if (again) { again = false; kick(); }
    });
  };
  ctl.on('reported', kick);
  ctl.on('status', kick);
  const timer = setInterval(kick, TICK_MS);
  kick();
  return () => clearInterval(timer);
}

type Log = (msg: string, extra?: Record<string, unknown>) => void;

export async function servePostgres(
  o: { db: string; retentionDays?: number; id: string; share: string; http?: number; httpHost: string; rollouts: boolean; stats?: number; provisioning?: string },
  broker: string, tls: BrokerTls | undefined, log: Log, closeBroker: () => Promise<void> | undefined, sign?: CommandSigner,
): Promise<void> {
  const store = await PostgresControllerStore.open(o.db, { retentionDays: o.retentionDays });
  const ctl = new FleetController(store, { broker, tls, clientId: o.id, share: o.share === 'none' ? undefined : o.share, log });
  await ctl.start();
  // Provisioning keeps its own state (controller/provisioning/state.ts), whatever the store.
  const provisioning = o.provisioning ? new (await import('./provisioning/service.js')).ProvisioningService(o.provisioning, { broker, clientId: o.id, tls, log }) : undefined;
  await provisioning?.start();
  const stopRollouts = o.rollouts ? startRollouts(ctl, log, sign) : undefined;
  const dashboard = o.http === undefined ? undefined : await startControllerDashboard(ctl, { port: o.http, host: o.httpHost, log });
  log('serving', { broker, db: store.location, protocolVersion: ctl.protocolVersion, clientId: o.id });
  process.stdout.write(JSON.stringify({ ready: true, broker, db: store.location, dashboard: dashboard?.url }) + '\n');
  if (o.stats) (await import('./process-stats.js')).startStatsLines(o.stats, () => ({ ...ctl.counters }), (l) => process.stdout.write(l));
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) process.exit(130);
    stopping = true;
    stopRollouts?.();
    await dashboard?.app.close();
    await provisioning?.stop();
    await ctl.stop();
    await ctl.idle();
    await closeBroker();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}
