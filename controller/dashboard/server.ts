// `edge-fleet serve --http PORT`: the fleet dashboard. Static page + the JSON views + a
// server-sent event stream that pushes the views when they change. Every view reads the async
// ControllerStore, so the dashboard runs on SQLite and on PostgreSQL alike.
import Fastify, { type FastifyInstance } from 'fastify';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Errors } from '../../protocol/errors.js';
import { FleetStore } from '../store.js';
import { SqliteControllerStore } from '../store/sqlite.js';
import type { ControllerStore } from '../store/types.js';
import type { RolloutStatus } from '../rollout/driver.js';
import { parseDeviceQuery } from '../device-query.js';
import { learningView } from './learning-view.js';
import { deviceView, devicesView, fleetDriftView, rolloutsSummaryView, telemetryVolumeView } from './views.js';

const require = createRequire(import.meta.url);

export interface DashboardOptions {
  /** The controller database (a SQLite FleetStore is read through SqliteControllerStore). */
  store: FleetStore | ControllerStore;
  rollouts?: () => RolloutStatus[] | Promise<RolloutStatus[]>;
  /**
   * How often the event stream reads the views again while a page is open (ms). On PostgreSQL
   * this is what shows the devices that report to the other replicas.
   */
  pollMs?: number;
  /**
   * The controller's events ('status', 'reported', 'batch'): each brings the next update
   * forward to within EVENT_DELAY_MS, so the devices of this process show at once.
   */
  events?: Pick<EventEmitter, 'on' | 'off'>;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

function uiDir(): string {
  // Works from controller/dashboard (tsx) and dist/controller/dashboard (compiled): the
  // static files stay in the source tree.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'controller/dashboard/ui');
    try {
      readFileSync(path.join(candidate, 'index.html'));
      return candidate;
    } catch {
      dir = path.dirname(dir);
    }
  }
  return path.join(path.dirname(fileURLToPath(import.meta.url)), 'ui');
}

/** How soon a controller event pushes an update: many events in that time make one update. */
const EVENT_DELAY_MS = 250;
const CONTROLLER_EVENTS = ['status', 'reported', 'batch'] as const;

export function buildDashboard(opts: DashboardOptions): FastifyInstance {
  const store: ControllerStore = opts.store instanceof FleetStore ? new SqliteControllerStore(opts.store) : opts.store;
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, forceCloseConnections: true });
  // A view that throws answers 500 for that request only; the process (ingest, acks, artifact
  // serving) carries on. The views tolerate any stored row, so this is the backstop.
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) opts.log?.('dashboard route failed', { url: req.url, err: String(err) });
    void reply.status(status).send({ error: { code: status === 500 ? Errors.INTERNAL.code : Errors.BAD_REQUEST.code, message: status === 500 ? 'the view could not be built; see the controller log' : err.message } });
  });
  const ui = uiDir();
  const files: Record<string, [string, string]> = {
    '/': [path.join(ui, 'index.html'), 'text/html; charset=utf-8'],
    '/ui/app.js': [path.join(ui, 'app.js'), 'text/javascript; charset=utf-8'],
    // One stylesheet for both pages (the device's), plus the dashboard's own few rules.
    '/ui/style.css': [path.join(ui, '../../../agent/ui/style.css'), 'text/css; charset=utf-8'],
    '/ui/dashboard.css': [path.join(ui, 'dashboard.css'), 'text/css; charset=utf-8'],
    '/ui/vendor/chart.js': [path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'text/javascript; charset=utf-8'],
  };
  for (const [route, [file, type]] of Object.entries(files)) {
    app.get(route, async (_req, reply) => reply.type(type).header('cache-control', 'no-cache').send(readFileSync(file)));
  }

  const rollouts = async (): Promise<Record<string, unknown>[]> => rolloutsSummaryView(await opts.rollouts?.() ?? []);
  // No device list here: the counts, and the most recently seen device as a marker that some
  // device changed, so the page fetches its own page of the table again (/api/device-page).
  const snapshot = async (): Promise<Record<string, unknown>> => {
    const [counts, changed, drift, rolloutList, telemetry] = await Promise.all([
      store.deviceCounts(),
      store.devicePage({ offset: 0, limit: 1, sort: 'lastSeen', order: 'desc' }),
      fleetDriftView(store),
      rollouts(),
      telemetryVolumeView(store),
    ]);
    return { counts, changed: changed.rows[0] ?? null, drift, rollouts: rolloutList, telemetry };
  };

  // A page of devices: ?offset&limit&search&state&model&version&group&sort&order (400 on bad ones).
  app.get('/api/device-page', async (req) => devicesView(store, parseDeviceQuery(req.query as Record<string, unknown>)));
  app.get('/api/device-counts', async () => store.deviceCounts());
  // The rows of that page alone (the first 50 by default), the total in x-total-count.
  app.get('/api/devices', async (req, reply) => {
    const page = await devicesView(store, parseDeviceQuery(req.query as Record<string, unknown>));
    void reply.header('x-total-count', String(page.total));
    return page.rows;
  });
  app.get<{ Params: { id: string } }>('/api/devices/:id', async (req, reply) => {
    const v = await deviceView(store, req.params.id);
    if (!v) return reply.status(404).send({ error: { code: Errors.NOT_FOUND.code, message: `no device "${req.params.id}"` } });
    return v;
  });
  app.get('/api/drift', async () => fleetDriftView(store));
  app.get('/api/rollouts', async () => rollouts());
  app.get('/api/telemetry/volume', async () => telemetryVolumeView(store));
  app.get('/api/learning', async () => learningView(store));

  // The update stream: the snapshot again on a timer and soon after a controller event, sent
  // when it differs from the last one sent. One read at a time; a request during a read makes
  // one more read after it.
  const clients = new Set<{ write(s: string): void }>();
  let last = '';
  let reading = false;
  let again = false;
  let soon: NodeJS.Timeout | undefined;
  const update = (): void => {
    if (clients.size === 0) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    // A failed snapshot (the database away for a moment) skips one update; nothing here may
    // reject unhandled (that would end the process).
    snapshot().then((doc) => {
      const data = JSON.stringify(doc);
      if (data === last) return;
      last = data;
      for (const c of clients) c.write(`event: update\ndata: ${data}\n\n`);
    }).catch((err) => opts.log?.('dashboard update failed', { err: String(err) })).finally(() => {
      reading = false;
      if (again) {
        again = false;
        update();
      }
    });
  };
  const timer = setInterval(update, opts.pollMs ?? 1000);
  timer.unref();
  const onEvent = (): void => {
    if (soon || clients.size === 0) return;
    soon = setTimeout(() => {
      soon = undefined;
      update();
    }, EVENT_DELAY_MS);
    soon.unref();
  };
  for (const e of CONTROLLER_EVENTS) opts.events?.on(e, onEvent);

  // The same document once, for ?live=0 (screenshots, slow links): no open stream.
  app.get('/api/snapshot', async () => snapshot());

  app.get('/api/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const client = { write: (s: string) => res.write(s) };
    let open = true;
    req.raw.on('close', () => {
      open = false;
      clients.delete(client);
    });
    // Its first document now, whatever the others were last sent; then the shared updates.
    snapshot().then((doc) => {
      if (open) res.write(`event: update\ndata: ${JSON.stringify(doc)}\n\n`);
    }).catch((err) => opts.log?.('dashboard update failed', { err: String(err) })).finally(() => {
      if (open) clients.add(client);
    });
  });

  app.addHook('onClose', async () => {
    clearInterval(timer);
    clearTimeout(soon);
    for (const e of CONTROLLER_EVENTS) opts.events?.off(e, onEvent);
    clients.clear();
  });
  return app;
}
