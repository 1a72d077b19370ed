// edge-fleet enroll ... and edge-fleet revoke (docs/provisioning.md): the operator's side of
// provisioning by claim. Everything changes the provisioning state file (--dir), rewrites the
// broker's ACL and CRL and reloads the broker; `serve --provisioning DIR` answers the devices.
import { Command, InvalidArgumentError } from 'commander';
import { ID_PATTERN } from '../../protocol/names.js';
import { table } from '../table.js';
import { addClaim, disableClaim, disconnectDevice, initProvisioning, revokeDevice, unrevokeDevice } from './admin.js';
import { readBrokerTls, type BrokerTlsFiles } from '../broker-tls.js';
import { ProvisioningStore } from './state.js';

const DEFAULT_DIR = process.env.EDGE_FLEET_PROVISIONING ?? 'provisioning';

function id(value: string): string {
  if (!ID_PATTERN.test(value)) throw new InvalidArgumentError(`expected an id (letters, digits, _ and -, up to 64), got "${value}"`);
  return value;
}
function seconds(value: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(value);
  if (!m || Number(m[1]) <= 0) throw new InvalidArgumentError(`expected a duration such as 90d, 12h, 600s or 600, got "${value}"`);
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as Record<string, number>)[m[2]!]!;
}
function list(value: string): string[] {
  return value.split(',').map((v) => v.trim()).filter(Boolean).map(id);
}
function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}
async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    process.stderr.write(`edge-fleet: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

export function registerProvisioningCommands(program: Command): void {
  const enroll = program.command('enroll').description('provisioning by claim: claims, enrollment policies, enrolled devices (docs/provisioning.md)');
  enroll.command('init')
    .description('set up provisioning: the fleet CA, the broker\'s ACL and CRL files and how to reload it')
    .option('--dir <dir>', 'provisioning state directory', DEFAULT_DIR)
    .requiredOption('--ca <file>', 'fleet CA certificate (ca.crt of scripts/make-ca.sh)')
    .requiredOption('--ca-key <file>', 'fleet CA private key (ca.key)')
    .requiredOption('--acl-base <file>', 'the ACL without provisioned devices (the acl of scripts/make-ca.sh)')
    .requiredOption('--acl-file <file>', 'the ACL Mosquitto reads (acl_file); rewritten on every change')
    .option('--crl-file <file>', 'the CRL Mosquitto reads (crlfile); rewritten on every revocation')
    .option('--reload <command>', 'command that makes the broker re-read them', 'systemctl reload mosquitto')
    .action((o: { dir: string; ca: string; caKey: string; aclBase: string; aclFile: string; crlFile?: string; reload: string }) => run(async () => {
      await initProvisioning(o.dir, { caCert: o.ca, caKey: o.caKey, aclBase: o.aclBase, aclFile: o.aclFile, crlFile: o.crlFile, reload: o.reload.split(/\s+/).filter(Boolean) });
      process.stdout.write(`provisioning state in ${o.dir}; ACL written to ${o.aclFile}\n`);
    }));
  enroll.command('claim')
    .description('add a claim: a certificate and key shared by a batch of device images, and its policy')
    .argument('<name>', 'claim name (its certificate CN and MQTT username)', id)
    .option('--dir <dir>', 'provisioning state directory', DEFAULT_DIR)
    .requiredOption('--out <dir>', 'where NAME.crt, NAME.key and ca.crt for the image are written')
    .option('--pattern <regex>', 'device ids this claim may enroll (whole-id match; default: any device id)', ID_PATTERN.source.slice(1, -1))
    .option('--allow <ids>', 'only these device ids (comma-separated), on top of --pattern', list)
    .option('--groups <names>', 'groups whose desired state its devices may read (comma-separated)', list)
    .option('--lifetime <duration>', 'lifetime of the device certificates it gets (90d, 12h, 600s)', seconds, 90 * 86_400)
    .option('--claim-lifetime <duration>', 'lifetime of the claim certificate itself', seconds, 365 * 86_400)
    .option('--per-hour <n>', 'enrollments (first and rotations) per hour for this claim', positive, 100)
    .action((name: string, o: { dir: string; out: string; pattern: string; allow?: string[]; groups?: string[]; lifetime: number; claimLifetime: number; perHour: number }) => run(async () => {
      const files = await addClaim(o.dir, name, { pattern: o.pattern, allow: o.allow, groups: o.groups, lifetimeSeconds: o.lifetime, claimLifetimeSeconds: o.claimLifetime, perHour: o.perHour, out: o.out });
      process.stdout.write(`claim ${name}: ${files.cert}, ${files.key} (mode 600), ${files.ca}\n`);
    }));
  enroll.command('disable')
    .description('disable a claim: the broker denies it everything and its certificate is revoked')
    .argument('<name>', 'claim name', id)
    .option('--dir <dir>', 'provisioning state directory', DEFAULT_DIR)
    .action((name: string, o: { dir: string }) => run(() => disableClaim(o.dir, name)));
  enroll.command('claims')
    .description('list claims and their policies')
    .option('--dir <dir>', 'provisioning state directory', DEFAULT_DIR)
    .option('--json', 'JSON output')
    .action((o: { dir: string; json?: boolean }) => run(async () => {
      const rows = Object.values(new ProvisioningStore(o.dir).read().claims);
      process.stdout.write(o.json ? JSON.stringify(rows, null, 2) + '\n'
        : table(rows.map((c) => ({ claim: c.name, enabled: c.enabled, pattern: c.pattern, allow: c.allow.join(',') || '-', groups: c.groups.join(',') || '-', lifetime_s: c.lifetimeSeconds, per_hour: c.perHour }))));
    }));
  enroll.command('devices')
    .description('list enrolled devices, their current certificate and whether they are revoked')
    .option('--dir <dir>', 'provisioning state directory', DEFAULT_DIR)
    .option('--json', 'JSON output')
    .action((o: { dir: string; json?: boolean }) => run(async () => {
      const rows = Object.values(new ProvisioningStore(o.dir).read().devices);
      process.stdout.write(o.json ? JSON.stringify(rows, null, 2) + '\n'
        : table(rows.map((d) => ({ device: d.id, claim: d.claim, serial: d.certs.at(-1)?.serial, not_after: d.certs.at(-1)?.notAfter, revoked: d.revoked }))));
    }));
  enroll.command('unrevoke')
    .description('let a revoked device enroll again through its claim (its old certificates stay revoked)')
    .argument('<device>', 'device id', id)
    .option('--dir <dir>', 'provisioning state directory', DEFAULT_DIR)
    .action((device: string, o: { dir: string }) => run(() => unrevokeDevice(o.dir, device)));
  program.command('revoke')
    .description('revoke a device: its certificates go on the CRL, the broker ACL denies it everything, its re-enrollment is refused')
    .argument('<device>', 'device id', id)
    .option('--dir <dir>', 'provisioning state directory', DEFAULT_DIR)
    .option('--broker <url>', 'also end the device\'s open connection at this broker (a reload keeps open connections)')
    .option('--ca <file>', 'CA certificate (PEM) for an mqtts:// --broker')
    .option('--cert <file>', 'the controller\'s client certificate (PEM)')
    .option('--key <file>', 'the controller\'s private key (PEM, mode 600)')
    .action((device: string, o: { dir: string; broker?: string } & BrokerTlsFiles) => run(async () => {
      const tls = o.broker ? readBrokerTls(o) : undefined;
      const d = await revokeDevice(o.dir, device);
      process.stdout.write(`revoked ${device} (${d.certs.length} certificate(s) on the CRL); the broker was reloaded\n`);
      if (o.broker) {
        await disconnectDevice(o.broker, tls, device);
        process.stdout.write(`ended ${device}'s connection at ${o.broker}\n`);
      }
    }));
}
