// `edge-fleet serve --db postgres://...`: the controller on PostgreSQL. Replicas share the
// database; MQTT 5 shared subscriptions divide the device messages between them. Rollout plans
// and the dashboard still run on the SQLite store only (issue 20: their async port is next).
import type { BrokerTls } from './broker-tls.js';
import { FleetController } from './serve.js';
import { PostgresControllerStore } from './store/postgres.js';

type Log = (msg: string, extra?: Record<string, unknown>) => void;

export async function servePostgres(
  o: { db: string; retentionDays?: number; id: string; share: string; http?: number; rollouts: boolean },
  broker: string, tls: BrokerTls | undefined, log: Log, closeBroker: () => Promise<void> | undefined,
): Promise<void> {
  const store = await PostgresControllerStore.open(o.db, { retentionDays: o.retentionDays });
  const ctl = new FleetController(store, { broker, tls, clientId: o.id, share: o.share === 'none' ? undefined : o.share, log });
  await ctl.start();
  if (o.http !== undefined) log('the dashboard does not run on PostgreSQL yet; --http ignored');
  if (o.rollouts) log('rollout plans are not carried out on PostgreSQL yet; this replica only stores the fleet');
  log('serving', { broker, db: store.location, protocolVersion: ctl.protocolVersion, clientId: o.id });
  process.stdout.write(JSON.stringify({ ready: true, broker, db: store.location }) + '\n');
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) process.exit(130);
    stopping = true;
    await ctl.stop();
    await ctl.idle();
    await closeBroker();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}
