// The controller's provisioning service (docs/provisioning.md): answers first enrollments by
// claim (edge/provision/v1/CLAIM/DEVICE/req, reply on .../res, readable only by that claim)
// and re-enrollments by devices with their current certificate (edge/v1/DEVICE/cert/req,
// reply on edge/v1/DEVICE/cert/res). The broker's ACL proves who is asking: a claim can
// publish only under its own name, a device only under its own id. Its own MQTT connection,
// so serve.ts is unchanged.
import type { MqttClient } from 'mqtt';
import { EdgeError, FleetErrors, describe } from '../../protocol/errors.js';
import { ID_PATTERN } from '../../protocol/names.js';
import { PROVISION, filters, parseTopic, provisionTopics, topics } from '../../protocol/topics.js';
import type { BrokerTls } from '../broker-tls.js';
import { connectFleet } from '../connect.js';
import { applyBrokerFiles } from './broker-files.js';
import { checkCsr, issueClientCert, loadCa, type FleetCa } from './ca.js';
import { checkClaimEnrollment, checkRenewal, countIssued, parseRequest, type EnrollRequest } from './policy.js';
import { ProvisioningStore, type ProvisioningState } from './state.js';
import { readFileSync } from 'node:fs';

export interface EnrollAnswer {
  id: string | null;
  ok: boolean;
  deviceId?: string;
  certificate?: string;
  ca?: string;
  notAfter?: string;
  error?: { code: string; message: string };
}

export type EnrollEvent = { kind: 'claim' | 'renewal'; claim?: string; deviceId: string; ok: boolean; code?: string; message?: string };

export class ProvisioningService {
  readonly store: ProvisioningStore;
  readonly events: EnrollEvent[] = [];
  #ca: FleetCa | undefined;
  #client: MqttClient | undefined;
  /** One request at a time in this process (the state file's lock covers other processes). */
  #queue: Promise<void> = Promise.resolve();

  constructor(dir: string, readonly opts: { broker: string; clientId: string; tls?: BrokerTls; log?: (msg: string, extra?: Record<string, unknown>) => void }) {
    this.store = new ProvisioningStore(dir);
  }

  async start(): Promise<void> {
    const s = this.store.read();
    this.#ca = await loadCa(s.ca.cert, s.ca.key);
    const { client } = await connectFleet(this.opts.broker, {
      clientId: `${this.opts.clientId}-prov`,
      clean: true,
      reconnect: true,
      tls: this.opts.tls,
      onMessage: (topic, payload) => {
        this.#queue = this.#queue.then(() => this.#handle(topic, payload)).catch((err) =>
          this.opts.log?.('enrollment handling failed', { topic, err: describe(err) }));
      },
    });
    this.#client = client;
    await client.subscribeAsync({ [provisionTopics.reqFilter]: { qos: 1 }, [filters.certReq]: { qos: 1 } });
  }

  async stop(): Promise<void> {
    await this.#queue;
    await this.#client?.endAsync();
  }

  async #handle(topic: string, payload: Buffer): Promise<void> {
    const parts = topic.split('/');
    if (topic.startsWith(`${PROVISION}/`) && parts.length === 6 && parts[5] === 'req') {
      const [claim, device] = [parts[3]!, parts[4]!];
      if (!ID_PATTERN.test(claim) || !ID_PATTERN.test(device)) return;
      const answer = await this.#answer({ kind: 'claim', claim, deviceId: device }, payload);
      await this.#client?.publishAsync(provisionTopics.res(claim, device), JSON.stringify(answer), { qos: 1 });
      return;
    }
    const t = parseTopic(topic);
    if (t?.kind !== 'certReq' || !t.device || !ID_PATTERN.test(t.device)) return;
    const answer = await this.#answer({ kind: 'renewal', deviceId: t.device }, payload);
    await this.#client?.publishAsync(topics.certRes(t.device), JSON.stringify(answer), { qos: 1 });
  }

  async #answer(who: { kind: 'claim' | 'renewal'; claim?: string; deviceId: string }, payload: Buffer): Promise<EnrollAnswer> {
    let req: EnrollRequest | undefined;
    try {
      req = parseRequest(payload);
      const r = req;
      // The topic names the device (the ACL let only that claim or that device publish there);
      // the body must say the same.
      if (r.deviceId !== who.deviceId) throw FleetErrors.ENROLL_BAD_REQUEST(`"deviceId" is "${r.deviceId}" but the request was sent on the topic of "${who.deviceId}"`);
      const answer = await this.enroll(who.kind, who.claim, r);
      this.events.push({ ...who, ok: true });
      this.opts.log?.('enrolled', { ...who, notAfter: answer.notAfter });
      return answer;
    } catch (err) {
      const e = err instanceof EdgeError ? err : FleetErrors.ENROLL_FAILED(describe(err));
      this.events.push({ ...who, ok: false, code: e.code, message: e.message });
      this.opts.log?.('enrollment refused', { ...who, code: e.code, reason: e.message });
      return { id: req?.id ?? null, ok: false, error: { code: e.code, message: e.message } };
    }
  }

  /** Checks the policy and the CSR, signs, records, updates the broker; or throws the refusal. */
  enroll(kind: 'claim' | 'renewal', claimName: string | undefined, req: EnrollRequest): Promise<EnrollAnswer> {
    const ca = this.#ca!;
    return this.store.update(async (s: ProvisioningState) => {
      const controller = /^user (\S+)$/m.exec(readFileSync(s.broker.aclBase, 'utf8'))?.[1];
      const claim = kind === 'claim' ? checkClaimEnrollment(s, claimName!, req.deviceId, controller) : checkRenewal(s, req.deviceId);
      const csr = await checkCsr(req.csr, req.deviceId);
      const issued = await issueClientCert(ca, req.deviceId, csr.publicKey, claim.lifetimeSeconds);
      const before = s.devices[req.deviceId];
      const aclChanged = !before || before.groups.join(',') !== claim.groups.join(',');
      s.devices[req.deviceId] = {
        id: req.deviceId,
        claim: claim.name,
        groups: [...claim.groups],
        certs: [...(before?.certs ?? []), { serial: issued.serial, notAfter: issued.notAfter, issuedAt: new Date().toISOString() }].slice(-10),
      };
      countIssued(s, claim.name);
      // The broker knows the device before the device hears it may connect.
      if (aclChanged) await applyBrokerFiles(s, ca);
      return { write: true, value: { id: req.id, ok: true, deviceId: req.deviceId, certificate: issued.pem, ca: ca.pem, notAfter: issued.notAfter } };
    });
  }
}
