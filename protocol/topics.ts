// Every MQTT topic of the fleet protocol (docs/protocol.md), in one place. The version is
// part of the topic so that a v2 can run beside v1 on the same broker.
export const PROTOCOL = 'edge/v1';

export const topics = {
  status: (device: string) => `${PROTOCOL}/${device}/status`,
  cmd: (device: string) => `${PROTOCOL}/${device}/cmd`,
  cmdRes: (device: string) => `${PROTOCOL}/${device}/cmd/res`,
  /**
   * Where a requester asks (MQTT 5 response topic) for the replies to its commands: one level
   * under the device's cmd/res, named after the requester. A device replies to no other
   * response topic (see replyTopicAllowed).
   */
  cmdReply: (device: string, requester: string) => `${PROTOCOL}/${device}/cmd/res/${requester.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128) || '_'}`,
  telemetry: (device: string, stream: string) => `${PROTOCOL}/${device}/telemetry/${stream}`,
  /** The controller's end-to-end acknowledgement of a stored batch (docs/protocol.md#telemetry-acknowledgements). */
  telemetryAck: (device: string, stream: string) => `${PROTOCOL}/${device}/telemetry/${stream}/ack`,
  /** What a device subscribes to for the acks of all its streams. */
  telemetryAcks: (device: string) => `${PROTOCOL}/${device}/telemetry/+/ack`,
  desired: (device: string) => `${PROTOCOL}/${device}/models/desired`,
  groupDesired: (group: string) => `${PROTOCOL}/groups/${group}/models/desired`,
  reported: (device: string) => `${PROTOCOL}/${device}/models/reported`,
  artifactReq: (device: string) => `${PROTOCOL}/${device}/artifacts/req`,
  artifactRes: (device: string) => `${PROTOCOL}/${device}/artifacts/res`,
  /** Re-enrollment (certificate rotation) with the device's current certificate (docs/provisioning.md). */
  certReq: (device: string) => `${PROTOCOL}/${device}/cert/req`,
  certRes: (device: string) => `${PROTOCOL}/${device}/cert/res`,
};

/**
 * First enrollment by claim (docs/provisioning.md): outside edge/v1 so that no device pattern
 * of the ACL reaches it. A claim credential (certificate CN = the claim's name) may publish
 * only to its own .../req and read only its own .../res; nothing else.
 */
export const PROVISION = 'edge/provision/v1';
export const provisionTopics = {
  req: (claim: string, device: string) => `${PROVISION}/${claim}/${device}/req`,
  res: (claim: string, device: string) => `${PROVISION}/${claim}/${device}/res`,
  /** What the controller subscribes to: every claim's requests. */
  reqFilter: `${PROVISION}/+/+/req`,
};

/** Subscription filters the controller uses (any device). */
export const filters = {
  status: `${PROTOCOL}/+/status`,
  cmdRes: `${PROTOCOL}/+/cmd/res`,
  /** MQTT 5 replies to any requester (topics.cmdReply): the controller counts them as the device seen. */
  cmdReply: `${PROTOCOL}/+/cmd/res/+`,
  telemetry: `${PROTOCOL}/+/telemetry/+`,
  reported: `${PROTOCOL}/+/models/reported`,
  artifactReq: `${PROTOCOL}/+/artifacts/req`,
  certReq: `${PROTOCOL}/+/cert/req`,
};

export type TopicKind = 'status' | 'cmd' | 'cmdRes' | 'cmdReply' | 'telemetry' | 'telemetryAck' | 'desired' | 'groupDesired' | 'reported' | 'artifactReq' | 'artifactRes' | 'certReq' | 'certRes';

export interface ParsedTopic {
  kind: TopicKind;
  device?: string;
  group?: string;
  stream?: string;
}

/** Splits a fleet topic into its parts; undefined for anything that is not one. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts.length < 4 || `${parts[0]}/${parts[1]}` !== PROTOCOL) return undefined;
  const [, , a, b, c, d] = parts;
  if (a === 'groups') {
    if (parts.length === 6 && c === 'models' && d === 'desired') return { kind: 'groupDesired', group: b };
    return undefined;
  }
  const rest = parts.slice(3).join('/');
  switch (rest) {
    case 'status': return { kind: 'status', device: a };
    case 'cmd': return { kind: 'cmd', device: a };
    case 'cmd/res': return { kind: 'cmdRes', device: a };
    case 'models/desired': return { kind: 'desired', device: a };
    case 'models/reported': return { kind: 'reported', device: a };
    case 'artifacts/req': return { kind: 'artifactReq', device: a };
    case 'artifacts/res': return { kind: 'artifactRes', device: a };
    case 'cert/req': return { kind: 'certReq', device: a };
    case 'cert/res': return { kind: 'certRes', device: a };
  }
  if (b === 'cmd' && c === 'res' && parts.length === 6) return { kind: 'cmdReply', device: a };
  if (b === 'telemetry' && parts.length === 5) return { kind: 'telemetry', device: a, stream: c };
  if (b === 'telemetry' && parts.length === 6 && d === 'ack') return { kind: 'telemetryAck', device: a, stream: c };
  return undefined;
}

/**
 * Whether a command's response topic is one this device may reply to: only under its own
 * reply prefix, edge/v1/{device}/cmd/res/{requester}. Anything else (its own models/reported,
 * another device's cmd, a topic outside the fleet) is not published to; the reply goes to
 * edge/v1/{device}/cmd/res instead.
 */
export function replyTopicAllowed(topic: string, deviceId: string): boolean {
  const prefix = `${topics.cmdRes(deviceId)}/`;
  return topic.startsWith(prefix) && /^[A-Za-z0-9_.-]{1,128}$/.test(topic.slice(prefix.length));
}

/**
 * Whether a message on this topic is for this device: its own topics, or the desired state of
 * a group it is in. The device subscribes to nothing else, so anything else (a broker bridge or
 * ACL mistake) is dropped rather than acted on.
 */
export function addressedTo(t: ParsedTopic, deviceId: string, groups: readonly string[]): boolean {
  if (t.kind === 'groupDesired') return t.group !== undefined && groups.includes(t.group);
  return t.device === deviceId;
}
