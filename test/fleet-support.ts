// Shared pieces of the fleet tests: an agent with a fleet link on a temporary data dir, a
// controller on its own database, and a plain MQTT client for looking at the wire.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { FleetLink } from '../agent/fleet/link.js';
import { FleetController } from '../controller/serve.js';
import { FleetStore } from '../controller/store.js';
import { waitFor } from './helpers/wait.js';

export interface TestAgent {
  agent: Agent;
  link: FleetLink;
  dir: string;
  stop(): Promise<void>;
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Builds (does not start) an agent whose fleet link points at `url`. */
export function makeAgent(url: string | undefined, deviceId: string, overrides: Record<string, unknown> = {}, dir = tempDir('edge-fleet-agent-').dir): TestAgent {
  const { mqtt: mqttOverrides, ...rest } = overrides as { mqtt?: Record<string, unknown> };
  const config = parseConfig({
    deviceId,
    dataDir: 'data',
    log: { level: 'silent' },
    health: { port: 0 },
    mqtt: { ...(url ? { url } : {}), reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5, ...mqttOverrides },
    security: { requireSignedPackages: false },
    ...rest,
  }, 'test', dir);
  const agent = new Agent(config);
  let link = agent.components.find((c): c is FleetLink => c instanceof FleetLink);
  if (!link) {
    link = new FleetLink(agent.context, { telemetry: () => agent.telemetry });
    agent.components.push(link);
  }
  return { agent, link, dir, stop: () => agent.stop() };
}

export async function startAgent(url: string | undefined, deviceId: string, overrides: Record<string, unknown> = {}): Promise<TestAgent> {
  const a = makeAgent(url, deviceId, overrides);
  await a.agent.start();
  if (url) await waitFor(() => a.link.state === 'connected', { timeoutMs: 15_000, what: () => `${deviceId} connected (${JSON.stringify(a.link.status())})` });
  return a;
}

export async function startController(url: string, opts: { clientId?: string; share?: string; db?: string } = {}): Promise<{ ctl: FleetController; store: FleetStore; stop(): Promise<void> }> {
  const db = opts.db ?? path.join(tempDir('edge-fleet-ctl-').dir, 'fleet.db');
  const store = new FleetStore(db);
  const ctl = new FleetController(store, { broker: url, clientId: opts.clientId ?? `ctl-${process.pid}-${Math.random().toString(36).slice(2, 6)}`, share: opts.share });
  await ctl.start();
  return {
    ctl,
    store,
    async stop() {
      await ctl.stop();
      store.close();
    },
  };
}

/** A plain client that records every message it receives. */
export async function watcher(url: string, filters: string[], version: 4 | 5 = 5): Promise<{ client: MqttClient; messages: { topic: string; payload: Buffer; props?: Record<string, unknown> }[]; close(): Promise<void> }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: version, clientId: `watch-${Math.random().toString(36).slice(2, 8)}`, reconnectPeriod: 0 });
  const messages: { topic: string; payload: Buffer; props?: Record<string, unknown> }[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload, props: packet.properties as Record<string, unknown> | undefined }));
  if (filters.length) await client.subscribeAsync(filters, { qos: 1 });
  return { client, messages, close: () => client.endAsync() };
}

/** Report states in which a version serves: active, or (with the rollout slots) probation and committed. */
export const SERVING = /^(active|probation|committed)$/;
