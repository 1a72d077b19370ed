// The enrollment policy (docs/provisioning.md): who may get a device certificate for which id.
// Pure checks on the state; the service signs only after every one of them passed.
import { FleetErrors } from '../../protocol/errors.js';
import { ID_PATTERN } from '../../protocol/names.js';
import type { ClaimPolicy, ProvisioningState } from './state.js';

/** Largest enrollment request (bytes): a CSR is under 1 KB, the JSON around it a few dozen. */
export const MAX_REQUEST_BYTES = 8 * 1024;
const HOUR = 3600_000;

export interface EnrollRequest {
  id: string;
  deviceId: string;
  csr: string;
}

/** The request's JSON, shape-checked; throws EDGE_ENROLL_TOO_LARGE / EDGE_ENROLL_BAD_REQUEST. */
export function parseRequest(payload: Buffer): EnrollRequest {
  if (payload.length > MAX_REQUEST_BYTES) throw FleetErrors.ENROLL_TOO_LARGE(payload.length, MAX_REQUEST_BYTES);
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    throw FleetErrors.ENROLL_BAD_REQUEST('not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw FleetErrors.ENROLL_BAD_REQUEST('not a JSON object');
  const r = doc as Record<string, unknown>;
  if (typeof r.id !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(r.id)) throw FleetErrors.ENROLL_BAD_REQUEST('"id" must be 1..128 letters, digits or _.:-');
  if (typeof r.deviceId !== 'string' || !ID_PATTERN.test(r.deviceId)) throw FleetErrors.ENROLL_BAD_REQUEST('"deviceId" must be a device id (letters, digits, _ and -)');
  if (typeof r.csr !== 'string') throw FleetErrors.ENROLL_BAD_REQUEST('"csr" must be a string');
  return { id: r.id, deviceId: r.deviceId, csr: r.csr };
}

/** Names no device may take: the claims', the controller's, the topic words. */
export function reservedIds(s: ProvisioningState, controller: string | undefined): Set<string> {
  return new Set(['groups', 'provision', ...(controller ? [controller] : []), ...Object.keys(s.claims)]);
}

/** First enrollment by a claim: the claim's policy for this device id. */
export function checkClaimEnrollment(s: ProvisioningState, claimName: string, deviceId: string, controller: string | undefined): ClaimPolicy {
  const claim = s.claims[claimName];
  if (!claim || !claim.enabled) throw FleetErrors.ENROLL_UNKNOWN_CLAIM(claimName);
  if (reservedIds(s, controller).has(deviceId)) throw FleetErrors.ENROLL_REFUSED(deviceId, 'the id is reserved (a claim, the controller, or a topic word)');
  const device = s.devices[deviceId];
  if (device?.revoked) throw FleetErrors.ENROLL_REVOKED(deviceId);
  if (device && device.claim !== claimName) throw FleetErrors.ENROLL_REFUSED(deviceId, `the id is enrolled through claim "${device.claim}", not "${claimName}"`);
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${claim.pattern})$`);
  } catch {
    throw FleetErrors.ENROLL_REFUSED(deviceId, `claim "${claimName}" has an invalid id pattern`);
  }
  if (!re.test(deviceId)) throw FleetErrors.ENROLL_REFUSED(deviceId, `claim "${claimName}" allows only ids matching ${claim.pattern}`);
  if (claim.allow.length && !claim.allow.includes(deviceId)) throw FleetErrors.ENROLL_REFUSED(deviceId, `the id is not on claim "${claimName}"'s allow list`);
  checkRate(s, claim);
  return claim;
}

/** Re-enrollment (rotation) by a device with its current certificate. */
export function checkRenewal(s: ProvisioningState, deviceId: string): ClaimPolicy {
  const device = s.devices[deviceId];
  if (!device) throw FleetErrors.ENROLL_REFUSED(deviceId, 'the device was not enrolled by this controller; enroll it through a claim');
  if (device.revoked) throw FleetErrors.ENROLL_REVOKED(deviceId);
  const claim = s.claims[device.claim];
  if (!claim) throw FleetErrors.ENROLL_REFUSED(deviceId, `its claim "${device.claim}" was removed`);
  checkRate(s, claim);
  return claim;
}

function checkRate(s: ProvisioningState, claim: ClaimPolicy): void {
  const now = Date.now();
  const recent = (s.recent[claim.name] ?? []).filter((t) => now - t < HOUR);
  if (recent.length >= claim.perHour) throw FleetErrors.ENROLL_RATE_LIMITED(claim.name, claim.perHour);
}

/** Counts one issued certificate against the claim's hourly limit. */
export function countIssued(s: ProvisioningState, claim: string): void {
  const now = Date.now();
  s.recent[claim] = [...(s.recent[claim] ?? []).filter((t) => now - t < HOUR), now];
}
