// The provisioning tests' broker: the shipped Mosquitto production config plus the CRL, and a
// provisioning directory (`edge-fleet enroll init`) whose ACL and CRL rewrites reload that
// broker with SIGHUP through its pid file.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { initProvisioning } from '../../controller/provisioning/admin.js';
import { tempDir } from '../fleet-support.js';
import { destroyMosquitto, startMosquitto, type Broker } from './mosquitto.js';
import { productionListener, type Pki } from './pki.js';

export interface ProvisioningBroker {
  broker: Broker;
  url: string;
  /** The broker's config folder: acl, crl.pem. */
  etc: string;
  work: { dir: string };
  provDir: string;
}

export async function startProvisioningBroker(pki: Pki, prefix: string, teardown: (fn: () => unknown) => void): Promise<ProvisioningBroker> {
  const listener = productionListener(pki); // installs ca/broker/acl into broker-etc
  const etc = path.join(pki.dir, 'broker-etc');
  const work = tempDir(prefix);
  teardown(() => work.remove());
  const provDir = path.join(work.dir, 'provisioning');
  const pidFile = path.join(work.dir, 'mosquitto.pid');
  await initProvisioning(provDir, {
    caCert: pki.file('ca.crt'), caKey: pki.file('ca.key'), aclBase: pki.file('acl'),
    aclFile: path.join(etc, 'acl'), crlFile: path.join(etc, 'crl.pem'),
    // The broker is not running yet at init: the reload waits for its pid file.
    reload: ['sh', '-c', `if [ -f '${pidFile}' ]; then kill -HUP "$(cat '${pidFile}')"; fi`],
  });
  const broker = await startMosquitto({ listenerConf: (port) => `${listener(port)}\ncrlfile ${etc}/crl.pem\n` });
  writeFileSync(pidFile, String(broker.proc.pid));
  teardown(() => destroyMosquitto(broker));
  return { broker, url: `mqtts://127.0.0.1:${broker.port}`, etc, work, provDir };
}
