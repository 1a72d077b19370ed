// `edge-fleet serve --http PORT`: the fleet dashboard. Static page + the JSON views + a
// server-sent event stream that pushes the views when they change.
import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Errors } from '../../protocol/errors.js';
import type { FleetStore } from '../store.js';
import type { RolloutStatus } from '../rollout/driver.js';
import { parseDeviceQuery } from '../device-query.js';
import { learningView } from './learning-view.js';
import { deviceView, devicesView, fleetDriftView, rolloutsSummaryView, telemetryVolumeView } from './views.js';

const require = createRequire(import.meta.url);

export interface DashboardOptions {
  store: FleetStore;
  rollouts?: () => RolloutStatus[];
  /** How often the event stream looks for changes (ms). */
  pollMs?: number;
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

export function buildDashboard(opts: DashboardOptions): FastifyInstance {
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

  const rollouts = (): Record<string, unknown>[] => rolloutsSummaryView(opts.rollouts?.() ?? []);
  // No device list here: the counts, and the most recently seen device as a marker that some
  // device changed, so the page fetches its own page of the table again (/api/device-page).
  const snapshot = (): Record<string, unknown> => ({
    counts: opts.store.deviceCounts(),
    changed: opts.store.devicePage({ offset: 0, limit: 1, sort: 'lastSeen', order: 'desc' }).rows[0] ?? null,
    drift: fleetDriftView(opts.store),
    rollouts: rollouts(),
    telemetry: telemetryVolumeView(opts.store),
  });

  // A page of devices: ?offset&limit&search&state&model&version&group&sort&order (400 on bad ones).
  app.get('/api/device-page', async (req) => devicesView(opts.store, parseDeviceQuery(req.query as Record<string, unknown>)));
  app.get('/api/device-counts', async () => opts.store.deviceCounts());
  // The rows of that page alone (the first 50 by default), the total in x-total-count.
  app.get('/api/devices', async (req, reply) => {
    const page = devicesView(opts.store, parseDeviceQuery(req.query as Record<string, unknown>));
    void reply.header('x-total-count', String(page.total));
    return page.rows;
  });
  app.get<{ Params: { id: string } }>('/api/devices/:id', async (req, reply) => {
    const v = deviceView(opts.store, req.params.id);
    if (!v) return reply.status(404).send({ error: { code: Errors.NOT_FOUND.code, message: `no device "${req.params.id}"` } });
    return v;
  });
  app.get('/api/drift', async () => fleetDriftView(opts.store));
  app.get('/api/rollouts', async () => rollouts());
  app.get('/api/telemetry/volume', async () => telemetryVolumeView(opts.store));
  app.get('/api/learning', async () => learningView(opts.store));

  const clients = new Set<{ write(s: string): void }>();
  let last = '';
  const timer = setInterval(() => {
    if (clients.size === 0) return;
    // A timer callback that throws would end the process: a failed snapshot skips one update.
    let data: string;
    try {
      data = JSON.stringify(snapshot());
    } catch (err) {
      opts.log?.('dashboard update failed', { err: String(err) });
      return;
    }
    if (data === last) return;
    last = data;
    for (const c of clients) c.write(`event: update\ndata: ${data}\n\n`);
  }, opts.pollMs ?? 1000);
  timer.unref();

  // The same document once, for ?live=0 (screenshots, slow links): no open stream.
  app.get('/api/snapshot', async () => snapshot());

  app.get('/api/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    try {
      res.write(`event: update\ndata: ${JSON.stringify(snapshot())}\n\n`);
    } catch (err) {
      opts.log?.('dashboard update failed', { err: String(err) });
    }
    const client = { write: (s: string) => res.write(s) };
    clients.add(client);
    req.raw.on('close', () => clients.delete(client));
  });

  app.addHook('onClose', async () => {
    clearInterval(timer);
    clients.clear();
  });
  return app;
}
