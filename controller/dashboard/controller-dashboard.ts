// The dashboard inside `edge-fleet serve --http PORT`, on either store: the views read the
// controller's database, the rollouts come from the rollout book every replica shares, and
// the controller's own events bring the live stream's next update forward.
import type { FastifyInstance } from 'fastify';
import type { FleetController } from '../serve.js';
import type { FleetStore } from '../store.js';
import type { ControllerStore } from '../store/types.js';
import { rolloutStatuses } from '../rollout/driver.js';
import { ControllerFleetPort } from '../rollout/fleet-port.js';
import { buildDashboard } from './server.js';

export interface ControllerDashboard {
  app: FastifyInstance;
  url: string;
}

export async function startControllerDashboard(
  ctl: FleetController<FleetStore | ControllerStore>,
  o: { port: number; host: string; log: (msg: string, extra?: Record<string, unknown>) => void },
): Promise<ControllerDashboard> {
  // Only the devices' reports are read through this port; it publishes nothing. On SQLite it
  // reads the FleetStore's model index, on PostgreSQL the shared device rows.
  const fleet = new ControllerFleetPort(ctl.store, () => ctl.client, () => ctl.protocolVersion, o.log);
  const app = buildDashboard({ store: ctl.db, rollouts: () => rolloutStatuses(ctl.db.rollouts, fleet), events: ctl, log: o.log });
  const url = await app.listen({ host: o.host, port: o.port });
  o.log('dashboard', { url });
  return { app, url };
}
