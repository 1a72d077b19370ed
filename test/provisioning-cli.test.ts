// edge-fleet enroll ... and edge-fleet revoke as an operator runs them (the compiled CLI):
// the state, the claim's files, the ACL and CRL they write, and clear refusals of bad input.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { makePki, repoRoot } from './helpers/pki.js';
import { tempDir } from './fleet-support.js';

t.setTimeout(90_000);
const cli = path.join(repoRoot, 'dist', 'controller', 'cli.js');
const pki = makePki([]);
t.teardown(() => pki.remove());
const work = tempDir('edge-prov-cli-');
t.teardown(() => work.remove());
const dir = path.join(work.dir, 'prov');
const acl = path.join(work.dir, 'acl');
const crl = path.join(work.dir, 'crl.pem');
const out = path.join(work.dir, 'image');

function fleet(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('init, claim, list, disable', async (t) => {
  const init = fleet('enroll', 'init', '--dir', dir, '--ca', pki.file('ca.crt'), '--ca-key', pki.file('ca.key'), '--acl-base', pki.file('acl'), '--acl-file', acl, '--crl-file', crl, '--reload', 'true');
  t.equal(init.code, 0, `init: ${init.stderr}`);
  t.match(readFileSync(acl, 'utf8'), /user edge-controller\ntopic readwrite edge\/provision\/v1\/#/, 'the controller may answer on the provisioning topics');
  t.match(readFileSync(crl, 'utf8'), /^-----BEGIN X509 CRL-----/, 'an empty CRL exists for Mosquitto to start with');

  const claim = fleet('enroll', 'claim', 'claim-a', '--dir', dir, '--out', out, '--pattern', 'pi-[0-9]+', '--groups', 'lab,north', '--lifetime', '12h', '--per-hour', '5');
  t.equal(claim.code, 0, `claim: ${claim.stderr}`);
  t.equal(statSync(path.join(out, 'claim-a.key')).mode & 0o077, 0, 'the claim key is readable by its owner only');
  const subject = execFileSync('openssl', ['x509', '-in', path.join(out, 'claim-a.crt'), '-noout', '-subject', '-issuer']).toString();
  t.match(subject, /subject=CN\s*=\s*claim-a/, 'the claim certificate\'s CN is the claim name');
  t.match(readFileSync(acl, 'utf8'), /user claim-a\ntopic write edge\/provision\/v1\/claim-a\/\+\/req\ntopic read edge\/provision\/v1\/claim-a\/\+\/res\ntopic deny edge\/v1\/#/, 'the claim may only ask');
  const claims = JSON.parse(fleet('enroll', 'claims', '--dir', dir, '--json').stdout) as Array<Record<string, unknown>>;
  t.match(claims, [{ name: 'claim-a', pattern: 'pi-[0-9]+', groups: ['lab', 'north'], lifetimeSeconds: 43_200, perHour: 5, enabled: true }]);
  t.match(fleet('enroll', 'claims', '--dir', dir).stdout, /claim-a\s+true\s+pi-\[0-9\]\+/, 'a table without --json');

  const dis = fleet('enroll', 'disable', 'claim-a', '--dir', dir);
  t.equal(dis.code, 0, `disable: ${dis.stderr}`);
  t.match(readFileSync(acl, 'utf8'), /user claim-a\ntopic deny #/, 'a disabled claim is denied everything');
  const serial = execFileSync('openssl', ['x509', '-in', path.join(out, 'claim-a.crt'), '-noout', '-serial']).toString().split('=')[1]!.trim();
  const crlText = execFileSync('openssl', ['crl', '-in', crl, '-noout', '-text']).toString();
  t.match(crlText.replace(/\s/g, ''), new RegExp(serial.replace(/^0+/, ''), 'i'), 'and its certificate is on the CRL');
  execFileSync('openssl', ['crl', '-in', crl, '-noout', '-CAfile', pki.file('ca.crt')]);
  t.pass('the CRL verifies against the fleet CA (openssl)');
});

t.test('bad input is refused with a clear message and changes nothing', async (t) => {
  const before = { acl: readFileSync(acl, 'utf8'), state: readFileSync(path.join(dir, 'provisioning.json'), 'utf8') };
  const cases: Array<[string, string[], RegExp]> = [
    ['a claim that exists', ['enroll', 'claim', 'claim-a', '--dir', dir, '--out', out], /claim "claim-a" exists already/],
    ['a claim name that is not one topic level', ['enroll', 'claim', 'a/b', '--dir', dir, '--out', out], /expected an id/],
    ['an invalid pattern', ['enroll', 'claim', 'claim-b', '--dir', dir, '--out', out, '--pattern', '(pi'], /--pattern \(pi: Invalid regular expression/],
    ['a bad lifetime', ['enroll', 'claim', 'claim-c', '--dir', dir, '--out', out, '--lifetime', 'soon'], /expected a duration/],
    ['revoking an unknown device', ['revoke', 'pi-404', '--dir', dir], /no device "pi-404" was enrolled/],
    ['un-revoking a device that is not revoked', ['enroll', 'unrevoke', 'pi-404', '--dir', dir], /not revoked/],
    ['a state directory that does not exist', ['revoke', 'pi-1', '--dir', path.join(work.dir, 'nowhere')], /no provisioning state at .*enroll init/],
    ['init over an existing state', ['enroll', 'init', '--dir', dir, '--ca', pki.file('ca.crt'), '--ca-key', pki.file('ca.key'), '--acl-base', pki.file('acl'), '--acl-file', acl, '--reload', 'true'], /exists already/],
  ];
  for (const [what, args, message] of cases) {
    const r = fleet(...args);
    t.not(r.code, 0, `${what}: exits non-zero`);
    t.match(r.stderr, message, `${what}: ${r.stderr.trim()}`);
  }
  t.notOk(existsSync(path.join(out, 'claim-b.crt')), 'no claim files for a refused claim');
  t.equal(readFileSync(acl, 'utf8'), before.acl, 'the ACL is unchanged');
  t.equal(readFileSync(path.join(dir, 'provisioning.json'), 'utf8'), before.state, 'the state is unchanged');
});
