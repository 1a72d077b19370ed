import client from 'prom-client';

/** One registry per agent (tests run several agents in one process). */
export function createRegistry(labels: Record<string, string>): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels(labels);
  client.collectDefaultMetrics({ register: registry, prefix: 'edge_agent_' });
  // prom-client names a few gauges *_total (active handles/requests/resources), which the
  // Prometheus naming rules (and promtool) reserve for counters: leave those out.
  for (const m of registry.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    if (name.endsWith('_total') && type !== 'counter') registry.removeSingleMetric(name);
  }
  return registry;
}

export { client as prom };
