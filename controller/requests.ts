// One-shot requests from the command line to the fleet: commands (request/response) and
// desired-state changes (retained).
import { randomUUID } from 'node:crypto';
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import { topics } from '../protocol/topics.js';
import type { ArtifactInfo, FleetStore } from './store.js';

export interface CommandReply {
  id: string | null;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

/**
 * Sends a command and waits for its reply: MQTT 5 response topic (edge/v1/{d}/cmd/res/{client})
 * + correlation data, or
 * under MQTT 3.1.1 the device's fixed cmd/res topic matched by id.
 */
export async function sendCommand(
  client: MqttClient,
  protocolVersion: 4 | 5,
  deviceId: string,
  name: string,
  args: unknown,
  opts: { timeoutMs?: number; id?: string; sign?: (cmd: { id: string; name: string; args: unknown }) => object } = {},
): Promise<CommandReply> {
  const id = opts.id ?? randomUUID();
  // MQTT 5: under the device's reply prefix, named after this client (the device replies to
  // no other response topic; the broker ACL lets a device publish only in its own subtree).
  const replyTopic = protocolVersion === 5 ? topics.cmdReply(deviceId, client.options.clientId ?? 'edge-fleet') : topics.cmdRes(deviceId);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  await client.subscribeAsync(replyTopic, { qos: 1 });
  try {
    return await new Promise<CommandReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.removeListener('message', onMessage);
        reject(new Error(`no reply from ${deviceId} to "${name}" within ${timeoutMs} ms (is it online? try "edge-fleet devices")`));
      }, timeoutMs);
      const onMessage = (topic: string, payload: Buffer): void => {
        if (topic !== replyTopic) return;
        let reply: CommandReply;
        try {
          reply = JSON.parse(payload.toString('utf8')) as CommandReply;
        } catch {
          return;
        }
        if (reply.id !== id) return;
        clearTimeout(timer);
        client.removeListener('message', onMessage);
        resolve(reply);
      };
      client.on('message', onMessage);
      const pub: IClientPublishOptions = { qos: 1 };
      if (protocolVersion === 5) pub.properties = { responseTopic: replyTopic, correlationData: Buffer.from(id), contentType: 'application/json' };
      const cmd = { id, name, args: args ?? {} };
      client.publish(topics.cmd(deviceId), JSON.stringify(opts.sign ? opts.sign(cmd) : cmd), pub, (err) => {
        if (err) {
          clearTimeout(timer);
          client.removeListener('message', onMessage);
          reject(err);
        }
      });
    });
  } finally {
    await client.unsubscribeAsync(replyTopic).catch(() => undefined);
  }
}

export type DeployTarget = { device: string } | { group: string };

export function targetKey(t: DeployTarget): string {
  return 'device' in t ? `device:${t.device}` : `group:${t.group}`;
}

export function targetTopic(t: DeployTarget): string {
  return 'device' in t ? topics.desired(t.device) : topics.groupDesired(t.group);
}

/** What deploy needs of a store: the desired documents (the SQLite FleetStore or any ControllerStore). */
export interface DesiredBook {
  desired(target: string): { models: Record<string, unknown>[] } | undefined | Promise<{ models: Record<string, unknown>[] } | undefined>;
  setDesired(target: string, doc: object): void | Promise<void>;
}

/** The desired document `current` with one model set to an artifact. */
function withArtifact(current: Record<string, unknown>[], art: ArtifactInfo): { v: 1; models: Record<string, unknown>[]; updatedAt: string } {
  const entry: Record<string, unknown> = { name: art.name, version: art.version, sha256: art.sha256, size: art.size };
  if (art.signature) entry.signature = art.signature;
  const models = current.filter((m) => m.name !== art.name).concat(entry);
  return { v: 1, models, updatedAt: new Date().toISOString() };
}

/** The new desired document for a target with one model set to an artifact. */
export function desiredWith(store: FleetStore, target: DeployTarget, art: ArtifactInfo): { v: 1; models: Record<string, unknown>[]; updatedAt: string } {
  return withArtifact(store.desired(targetKey(target))?.models ?? [], art);
}

/** Publishes a target's desired state (retained, QoS 1) and records it. */
export async function deploy(client: MqttClient, store: DesiredBook, target: DeployTarget, art: ArtifactInfo): Promise<{ topic: string; doc: object }> {
  const doc = withArtifact((await store.desired(targetKey(target)))?.models ?? [], art);
  const topic = targetTopic(target);
  await client.publishAsync(topic, JSON.stringify(doc), { qos: 1, retain: true });
  await store.setDesired(targetKey(target), doc);
  return { topic, doc };
}
