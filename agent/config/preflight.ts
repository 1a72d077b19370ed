// The checks `run` makes on the files a config names, before anything starts, so that
// `check-config` (and install.sh, which runs it) finds every problem `run` would: private key
// permissions, certificates and trusted keys that load, model packages that exist.
import { existsSync, readFileSync } from 'node:fs';
import type { Config } from './schema.js';
import { checkPrivateKeyFile } from '../security/key-file.js';
import { loadTrustedKeys } from '../security/trusted-keys.js';
import { describe } from '../errors.js';

/** Every problem found, each naming the config key and what to do. */
export function preflight(config: Config): string[] {
  const problems: string[] = [];
  const check = (fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      problems.push(describe(err).replace(/^invalid config file [^:]*:\n\s*/, ''));
    }
  };
  const { mqtt, security } = config;
  if (mqtt.key) check(() => checkPrivateKeyFile(mqtt.key!, 'mqtt.key'));
  const prov = config.provisioning;
  if (prov) check(() => checkPrivateKeyFile(prov.claimKey, 'provisioning.claimKey'));
  for (const [key, file] of [['mqtt.ca', mqtt.ca], ['mqtt.cert', mqtt.cert], ['provisioning.claimCert', prov?.claimCert]] as const) {
    if (!file) continue;
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch (err) {
      problems.push(`${key} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? describe(err)})`);
      continue;
    }
    if (!/-----BEGIN CERTIFICATE-----/.test(text)) problems.push(`${key} ${file} is not a PEM certificate`);
  }
  check(() => loadTrustedKeys(security.trustedKeys, 'security.trustedKeys'));
  check(() => loadTrustedKeys(security.commands.controllerKeys, 'security.commands.controllerKeys'));
  if (security.commands.requireSignature && security.commands.controllerKeys.length === 0) {
    problems.push('security.commands.requireSignature is true but security.commands.controllerKeys is empty: list the controller\'s public command key');
  }
  config.models.forEach((m, i) => {
    if (!existsSync(m.package)) problems.push(`models[${i}].package: ${m.package} does not exist (expected a package folder or a .edgepkg file)`);
  });
  return problems;
}
