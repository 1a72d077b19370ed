// The device status page: static files with no build step, Chart.js from its npm package.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { packageRoot } from '../native.js';

const require = createRequire(import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(packageRoot, 'agent/ui/index.html'), type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: path.join(packageRoot, 'agent/ui/app.js'), type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: path.join(packageRoot, 'agent/ui/style.css'), type: 'text/css; charset=utf-8' },
  '/ui/vendor/chart.js': { file: path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), type: 'text/javascript; charset=utf-8' },
};

export function registerStatusPage(app: FastifyInstance): void {
  for (const [route, { file, type }] of Object.entries(FILES)) {
    let body: Buffer | undefined;
    app.get(route, async (_req, reply) => {
      body ??= readFileSync(file); // read on first request, not at start-up
      return reply.type(type).header('cache-control', 'no-cache').send(body);
    });
  }
}
