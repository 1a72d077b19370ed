// What the broker enforces, written from the provisioning state (docs/provisioning.md): the
// Mosquitto ACL (the base file plus a block per claim and per enrolled device) and the CRL of
// the fleet CA, then a reload of Mosquitto. Mosquitto 2.0 re-reads acl_file on SIGHUP, and
// with it the listeners' certificates and crlfile; "deny" lines are checked before any grant.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PROTOCOL, PROVISION, topics } from '../../protocol/topics.js';
import { makeCrl, type FleetCa } from './ca.js';
import { writeAtomic, type ProvisioningState } from './state.js';

/** The ACL text: base, then claims, enrolled devices, and revoked ones (deny everything). */
export function renderAcl(s: ProvisioningState): string {
  const lines = [readFileSync(s.broker.aclBase, 'utf8').trimEnd(), '', '# ---- written by edge-fleet (controller/provisioning): do not edit below ----'];
  // The controller (named in the base file) reads and answers the provisioning topics.
  const ctl = /^user (\S+)$/m.exec(readFileSync(s.broker.aclBase, 'utf8'))?.[1];
  if (ctl) lines.push('', `user ${ctl}`, `topic readwrite ${PROVISION}/#`);
  for (const c of Object.values(s.claims)) {
    lines.push('', `user ${c.name}`);
    if (c.enabled) {
      // Its own requests and replies only; the device pattern edge/v1/%u/# is denied to it.
      lines.push(`topic write ${PROVISION}/${c.name}/+/req`, `topic read ${PROVISION}/${c.name}/+/res`, `topic deny ${PROTOCOL}/#`);
    } else {
      lines.push('topic deny #');
    }
  }
  for (const d of Object.values(s.devices)) {
    lines.push('', `user ${d.id}`);
    if (d.revoked) lines.push('topic deny #');
    else for (const g of d.groups) lines.push(`topic read ${topics.groupDesired(g)}`);
  }
  return lines.join('\n') + '\n';
}

/** Writes the ACL (and the CRL) from the state and reloads the broker. */
export async function applyBrokerFiles(s: ProvisioningState, ca: FleetCa): Promise<void> {
  writeAtomic(s.broker.aclFile, renderAcl(s), 0o644);
  if (s.broker.crlFile) writeAtomic(s.broker.crlFile, await makeCrl(ca, s.revokedSerials), 0o644);
  await reloadBroker(s.broker.reload);
}

export function reloadBroker(argv: string[]): Promise<void> {
  if (!argv.length) return Promise.resolve();
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`broker reload "${argv.join(' ')}" failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}
