import client from 'prom-client';

/** One registry per agent (tests run several agents in one process). */
export function createRegistry(labels: Record<string, string>): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels(labels);
  client.collectDefaultMetrics({ register: registry, prefix: 'edge_agent_process_' });
  return registry;
}

export { client as prom };
