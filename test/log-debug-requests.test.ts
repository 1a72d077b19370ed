// At log level debug the HTTP server logs every request with fastify's request object. The
// secret redaction on every log line must leave that object to its serializer: walking it
// (socket, server, parser) 32 levels deep blocked the event loop for minutes per request,
// grew the heap to its limit, and the agent stopped answering and lost its broker.
import t from 'tap';
import { spawnAgent } from './helpers/agent.js';

t.test('an agent logging at debug answers its HTTP requests and logs them', async (t) => {
  const agent = spawnAgent({ deviceId: 'debug-log', log: { level: 'debug' }, security: { requireSignedPackages: false } });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  for (const route of ['/healthz', '/readyz', '/v1/status', '/healthz']) {
    const res = await fetch(`${url}${route}`, { headers: { authorization: 'Bearer not-for-the-log' }, signal: AbortSignal.timeout(10_000) });
    t.ok(res.status === 200 || res.status === 503, `${route} answers (${res.status})`);
    await res.arrayBuffer();
  }
  const line = await agent.waitForLog((l) => l.msg === 'incoming request' && (l.req as { url?: string } | undefined)?.url === '/v1/status', 10_000, 'the request log line');
  t.match(line.req, { method: 'GET', url: '/v1/status' }, 'the request is logged through its serializer');
  t.notMatch(JSON.stringify(agent.logs), 'not-for-the-log', 'the authorization header is not');
  agent.kill('SIGTERM');
  t.match(await agent.exited(), { code: 0 }, 'and it stops cleanly');
});
