// deploy/install.sh writes a device config that works with the fleet's files as docs/security.md
// lays them out: certificates under /etc/edge-agent/tls, the package signing key trusted, and
// the agent started from that config connects to the production TLS broker.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { FleetLink } from '../agent/fleet/link.js';
import { spawnAgent } from './helpers/agent.js';
import { destroyMosquitto } from './helpers/mosquitto.js';
import { makePki, repoRoot, startTlsBroker } from './helpers/pki.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(720_000);
const install = path.join(repoRoot, 'deploy/install.sh');

t.test('install.sh --config-only: the documented layout, trusted keys, and a config that connects', { skip: process.getuid?.() !== 0 ? 'install.sh runs as root (CI does)' : false }, async (t) => {
  const pki = makePki(['dev-a:lab']);
  t.teardown(() => pki.remove());
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pub = path.join(dir, 'fleet-2026.pub');
  const kg = spawnSync(process.execPath, [path.join(repoRoot, 'bin/edge-model.js'), 'keygen', '--out', path.join(dir, 'fleet-2026')], { encoding: 'utf8' });
  t.equal(kg.status, 0, kg.stderr);
  const etc = path.join(dir, 'etc');
  const base = ['--config-only', '--etc', etc, '--device-id', 'dev-a'];

  const noCa = spawnSync('bash', [install, ...base, '--mqtt-url', 'mqtts://127.0.0.1:8883'], { encoding: 'utf8' });
  t.equal(noCa.status, 2, 'a TLS broker URL without --ca is refused');
  t.match(noCa.stderr, /give --ca .* and --cert\/--key/);
  const noKeys = spawnSync('bash', [install, '--config-only', '--etc', path.join(dir, 'etc-nokeys'), '--device-id', 'dev-a'], { encoding: 'utf8' });
  t.equal(noKeys.status, 0, noKeys.stderr);
  t.match(noKeys.stderr, /no --trusted-key: the agent refuses every model package/, 'no trusted key: warned');

  const broker = await startTlsBroker(pki);
  t.teardown(() => destroyMosquitto(broker));
  const r = spawnSync('bash', [install, ...base, '--mqtt-url', broker.tlsUrl, '--ca', pki.file('ca.crt'), '--cert', pki.file('devices/dev-a.crt'),
    '--key', pki.file('devices/dev-a.key'), '--group', 'lab', '--trusted-key', pub], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const written = JSON.parse(readFileSync(path.join(etc, 'config.json'), 'utf8'));

  // The same paths as the device section of docs/security.md.
  const doc = readFileSync(path.join(repoRoot, 'docs/security.md'), 'utf8');
  const block = /and in `\/etc\/edge-agent\/config.json`:\s*```json\n([\s\S]*?)```/.exec(doc);
  t.ok(block, 'docs/security.md shows the device config');
  const documented = JSON.parse(block![1]!);
  t.same([written.mqtt.ca, written.mqtt.cert, written.mqtt.key], [documented.mqtt.ca, documented.mqtt.cert, documented.mqtt.key], 'certificate paths as documented');
  t.same(written.security.trustedKeys, ['fleet-2026.pub'], 'the signing key is trusted');
  t.equal(statSync(path.join(etc, 'tls/device.key')).mode & 0o777, 0o600, 'device key mode 600');
  t.same(written.mqtt.groups, ['lab']);

  // Re-running keeps the operator's edits.
  const edited = { ...written, health: { ...written.health, port: 8099 } };
  writeFileSync(path.join(etc, 'config.json'), JSON.stringify(edited, null, 2));
  const again = spawnSync('bash', [install, ...base], { encoding: 'utf8' });
  t.equal(again.status, 0, again.stderr);
  t.same(JSON.parse(readFileSync(path.join(etc, 'config.json'), 'utf8')), edited, 'never overwritten');

  // That config, with a scratch state folder and port, connects to the production broker.
  const file = path.join(etc, 'config.json');
  const cfg = JSON.parse(readFileSync(file, 'utf8'));
  writeFileSync(file, JSON.stringify({ ...cfg, dataDir: path.join(dir, 'state'), health: { port: 0 }, log: { level: 'silent' } }));
  const agent = new Agent(parseConfig(JSON.parse(readFileSync(file, 'utf8')), file, etc));
  await agent.start();
  t.teardown(() => agent.stop());
  const link = agent.components.find((c): c is FleetLink => c instanceof FleetLink)!;
  await waitFor(() => link.state === 'connected', { timeoutMs: 20_000, what: () => `the installed config's link over TLS (${JSON.stringify(link.status())})` });
  t.pass('the agent connects with the installed certificates');
});

// From the x64 release file into a throwaway system root (an image being prepared): the user,
// the code with its own Node.js, the config, the unit (running that Node.js) enabled; no npm,
// node or compiler of the build machine is called. Then an upgrade in place keeping the state
// and the config, and the uninstall.
t.test('install.sh from the x64 release file into a throwaway root: placed and owned as the unit expects, upgraded, uninstalled', { skip: process.getuid?.() !== 0 ? 'install.sh runs as root (CI does)' : false }, async (t) => {
  const version: string = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version;
  const tarball = path.join(repoRoot, `build/release/edge-agent-${version}-linux-x64.tar.gz`);
  if (!existsSync(tarball)) {
    // CI builds it before the tests (.ci/run); on a fresh machine the test builds it (about
    // 100 s: the x64 release reuses what npm ci built, and takes Node.js from the npm registry).
    const built = spawnSync('bash', [path.join(repoRoot, 'scripts/release.sh'), '--arch', 'x64', '--if-missing'], { cwd: repoRoot, encoding: 'utf8', timeout: 420_000 });
    if (built.status !== 0 || !existsSync(tarball)) {
      t.fail(`${tarball} is missing and npm run release -- --arch x64 failed (exit ${built.status}): ${(built.stderr ?? '').slice(-2000)}`);
      return;
    }
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-install-root-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.equal(spawnSync('tar', ['-C', dir, '-xzf', tarball]).status, 0, `unpacked ${path.basename(tarball)}`);
  const rel = path.join(dir, `edge-agent-${version}-linux-x64`);
  const root = path.join(dir, 'root');
  mkdirSync(path.join(root, 'etc'), { recursive: true });
  writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(path.join(root, 'etc/shadow'), 'root:*:20000:0:99999:7:::\n', { mode: 0o600 });
  // Tools a release install must not need: each leaves a mark if called.
  const fake = path.join(dir, 'fakebin');
  mkdirSync(fake);
  for (const tool of ['npm', 'npx', 'node', 'cc', 'gcc', 'g++', 'c++', 'make', 'cmake', 'node-gyp', 'curl', 'wget']) {
    writeFileSync(path.join(fake, tool), `#!/bin/sh\necho ${tool} >> ${dir}/called\nexit 97\n`, { mode: 0o755 });
  }
  const env = { ...process.env, PATH: `${fake}:${process.env.PATH}` };
  // And no network: in a network namespace of its own (no interface but a down loopback), where unshare works.
  const netless = spawnSync('unshare', ['-n', 'true']).status === 0;
  const run = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(netless ? 'unshare' : 'bash', [...(netless ? ['-n', 'bash'] : []), path.join(rel, 'deploy/install.sh'), '--root', root, ...args], { encoding: 'utf8', env });
  t.comment(netless ? 'install.sh runs without network (unshare -n)' : 'unshare -n is not permitted here: install.sh runs with the network');
  const started = Date.now();
  const r = run('--device-id', 'dev-root');
  t.equal(r.status, 0, `install: ${r.stdout}${r.stderr}`);
  t.comment(`installed in ${Date.now() - started} ms; ${path.basename(tarball)} ${statSync(tarball).size} bytes, /opt/edge-agent ${spawnSync('du', ['-sb', path.join(root, 'opt/edge-agent')], { encoding: 'utf8' }).stdout.split('\t')[0]} bytes`);
  t.notOk(existsSync(path.join(dir, 'called')), `no npm, node, compiler or downloader called (${existsSync(path.join(dir, 'called')) ? readFileSync(path.join(dir, 'called'), 'utf8') : 'none'})`);

  const passwd = readFileSync(path.join(root, 'etc/passwd'), 'utf8').split('\n').filter((l) => l.startsWith('edge-agent:'));
  t.equal(passwd.length, 1, 'the edge-agent user in the root');
  const [, , uid, gid, , home, shell] = passwd[0]!.split(':');
  t.same([home, shell], ['/var/lib/edge-agent', '/usr/sbin/nologin'], 'a system user with the state directory as home and no shell');
  const group = readFileSync(path.join(root, 'etc/group'), 'utf8').split('\n').find((l) => l.startsWith('edge-agent:'));
  t.equal(group?.split(':')[2], gid, 'its own group');

  // The unit: what it runs, where, as whom, all present in the root.
  const inRoot = (p: string): string => path.join(root, p);
  const unit = readFileSync(path.join(root, 'etc/systemd/system/edge-agent.service'), 'utf8');
  const exec = /^ExecStart=(\S+) .* (\S+cli\.js) run --config (\S+)$/m.exec(unit);
  t.ok(exec, `ExecStart: ${/^ExecStart=.*$/m.exec(unit)?.[0]}`);
  const [, nodeBin, cli, config] = exec!;
  t.equal(nodeBin, '/opt/edge-agent/current/node/bin/node', 'the unit runs the current release\'s bundled Node.js, not /usr/bin/node');
  t.equal(/^WorkingDirectory=(.*)$/m.exec(unit)?.[1], '/opt/edge-agent/current');
  t.match(unit, /^ExecStartPre=\/opt\/edge-agent\/current\/node\/bin\/node \/opt\/edge-agent\/current\/dist\/agent\/cli\.js update guard --config \/etc\/edge-agent\/config\.json$/m, 'the boot guard before each start');
  t.match(unit, /^ReadWritePaths=\/opt\/edge-agent$/m, 'the updater may write its releases');
  // The self-updating layout: releases/VERSION and the current link to it.
  t.equal(readlinkSync(inRoot('opt/edge-agent/current')), `releases/${version}`, 'current -> releases/VERSION');
  t.ok(existsSync(inRoot(`opt/edge-agent/releases/${version}/RELEASE.json`)), 'the release in releases/VERSION');
  t.notOk(existsSync(inRoot('opt/edge-agent/dist')), 'no flat layout');
  t.match(unit, /^User=edge-agent$/m);
  t.match(unit, /^Group=edge-agent$/m);
  const nodeStat = statSync(inRoot(nodeBin!));
  t.ok(nodeStat.isFile() && (nodeStat.mode & 0o111) === 0o111 && nodeStat.uid === Number(uid), 'the bundled node: an executable anyone may run, the service user\'s (the self-updater replaces it)');
  t.ok(statSync(inRoot(cli!)).isFile(), `${cli} present`);
  const bundled = spawnSync(inRoot(nodeBin!), ['--version'], { encoding: 'utf8' });
  t.equal(bundled.stdout.trim(), `v${JSON.parse(readFileSync(path.join(rel, 'RELEASE.json'), 'utf8')).node}`, 'the bundled Node.js runs and is the release\'s version');
  t.equal(lstatSync(inRoot('etc/systemd/system/multi-user.target.wants/edge-agent.service')).isSymbolicLink(), true, 'enabled (multi-user.target.wants)');
  // Code: root's, readable by the service user, writable by no one else.
  const loose: string[] = [];
  const walk = (p: string): void => {
    const s = lstatSync(p);
    if (s.uid !== Number(uid) || s.gid !== Number(gid) || (!s.isSymbolicLink() && ((s.mode & 0o022) !== 0 || (s.mode & 0o004) === 0))) loose.push(`${p} ${s.uid}:${s.gid} ${(s.mode & 0o777).toString(8)}`);
    if (s.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
  };
  walk(inRoot('opt/edge-agent'));
  t.same(loose.slice(0, 5), [], 'every file under /opt/edge-agent is edge-agent:edge-agent (the self-updater writes releases there), world-readable, writable by its owner only');
  // Config: root:edge-agent 0640 in a 0750 directory; the service user can read it, no one else.
  const cfgStat = statSync(inRoot(config!));
  t.same([cfgStat.uid, cfgStat.gid, cfgStat.mode & 0o777], [0, Number(gid), 0o640], 'config.json root:edge-agent 0640');
  const etcStat = statSync(inRoot('etc/edge-agent'));
  t.same([etcStat.uid, etcStat.gid, etcStat.mode & 0o777], [0, Number(gid), 0o750], '/etc/edge-agent root:edge-agent 0750');
  const cfg = JSON.parse(readFileSync(inRoot(config!), 'utf8'));
  t.match(cfg, { deviceId: 'dev-root', dataDir: '/var/lib/edge-agent', update: { root: '/opt/edge-agent' } }, 'the state directory is the unit\'s StateDirectory; update.root the install prefix');
  t.match(unit, /^StateDirectory=edge-agent$/m, 'the unit: StateDirectory=edge-agent (/var/lib/edge-agent)');

  // The installed tree runs: its own node and cli, the sample models it carries.
  const installed = spawnAgent({ deviceId: 'dev-root', models: [{ name: 'digits', package: inRoot('opt/edge-agent/current/models/digits-int8'), backend: 'native' }, { name: 'digits-fp32', package: inRoot('opt/edge-agent/current/models/digits-fp32'), backend: 'ort' }], security: { requireSignedPackages: false } },
    { node: [inRoot(nodeBin!)], cli: inRoot(cli!) });
  t.teardown(() => installed.kill('SIGKILL'));
  const url = await installed.ready();
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { timeoutMs: 60_000, what: 'the installed agent ready' });
  const status = await (await fetch(`${url}/v1/status`)).json() as Record<string, unknown>;
  t.match(status, { arch: 'x64', node: bundled.stdout.trim() }, `the installed agent runs on its own Node.js: ${status.node}, kernels ${status.kernelVariant}`);
  installed.kill('SIGTERM');
  t.equal((await installed.exited()).code, 0, 'the installed agent stops with exit 0 on SIGTERM');

  // Upgrade in place: state and config kept, the old code replaced whole, still one user.
  mkdirSync(inRoot('var/lib/edge-agent'), { recursive: true });
  writeFileSync(inRoot('var/lib/edge-agent/telemetry.db'), 'state');
  writeFileSync(inRoot(config!), JSON.stringify({ ...cfg, health: { ...cfg.health, port: 8099 } }, null, 2));
  writeFileSync(inRoot('opt/edge-agent/current/left-from-old-version.js'), '');
  const again = run('--device-id', 'dev-root');
  t.equal(again.status, 0, `re-install: ${again.stderr}`);
  t.equal(readFileSync(inRoot('var/lib/edge-agent/telemetry.db'), 'utf8'), 'state', 'the state directory is kept');
  t.equal(JSON.parse(readFileSync(inRoot(config!), 'utf8')).health.port, 8099, 'the edited config is kept');
  t.notOk(existsSync(inRoot('opt/edge-agent/current/left-from-old-version.js')), 'the code is replaced whole');
  t.equal(readFileSync(inRoot('etc/passwd'), 'utf8').split('\n').filter((l) => l.startsWith('edge-agent:')).length, 1, 'still one user');
  t.ok(existsSync(inRoot(nodeBin!)), 'the bundled node in place');

  // An install over the flat layout of before (code in /opt/edge-agent/dist, no update.root):
  // migrated, the old code gone, the config kept with update.root added.
  rmSync(inRoot('opt/edge-agent'), { recursive: true });
  mkdirSync(inRoot('opt/edge-agent/dist/agent'), { recursive: true });
  writeFileSync(inRoot('opt/edge-agent/dist/agent/cli.js'), '// the flat install');
  const { update: _dropped, ...flatCfg } = JSON.parse(readFileSync(inRoot(config!), 'utf8'));
  writeFileSync(inRoot(config!), JSON.stringify(flatCfg, null, 2));
  const migrated = run('--device-id', 'dev-root');
  t.equal(migrated.status, 0, `over a flat install: ${migrated.stderr}`);
  t.match(migrated.stdout, /migrating the flat install/);
  t.notOk(existsSync(inRoot('opt/edge-agent/dist')), 'the flat code removed');
  t.equal(readlinkSync(inRoot('opt/edge-agent/current')), `releases/${version}`, 'migrated: current -> releases/VERSION');
  t.match(JSON.parse(readFileSync(inRoot(config!), 'utf8')), { health: { port: 8099 }, update: { root: '/opt/edge-agent' } }, 'the config kept, update.root added');
  // Something else at the prefix is refused, untouched.
  const other = path.join(dir, 'other');
  mkdirSync(path.join(other, 'opt/edge-agent'), { recursive: true });
  mkdirSync(path.join(other, 'etc'));
  writeFileSync(path.join(other, 'opt/edge-agent/notes.txt'), 'mine');
  writeFileSync(path.join(other, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(path.join(other, 'etc/group'), 'root:x:0:\n');
  writeFileSync(path.join(other, 'etc/shadow'), 'root:*:20000:0:99999:7:::\n', { mode: 0o600 });
  const refusedInstall = spawnSync('bash', [path.join(rel, 'deploy/install.sh'), '--root', other, '--device-id', 'dev-other'], { encoding: 'utf8', env });
  t.equal(refusedInstall.status, 1, 'an unknown folder at the prefix: refused');
  t.match(refusedInstall.stderr, /neither an edge-agent install \(releases\/\) nor a flat one/);
  t.equal(readFileSync(path.join(other, 'opt/edge-agent/notes.txt'), 'utf8'), 'mine', 'and left as it was');

  // Uninstall keeps config and state; --purge removes them and the user.
  const un = run('--uninstall');
  t.equal(un.status, 0, `--uninstall: ${un.stdout.trim()} ${un.stderr}`);
  t.notOk(existsSync(inRoot('etc/systemd/system/edge-agent.service')), 'unit removed');
  t.notOk(existsSync(inRoot('etc/systemd/system/multi-user.target.wants/edge-agent.service')), 'disabled');
  t.notOk(existsSync(inRoot('opt/edge-agent')), 'code removed');
  t.ok(existsSync(inRoot(config!)) && existsSync(inRoot('var/lib/edge-agent/telemetry.db')), 'config and state kept');
  const purge = run('--uninstall', '--purge');
  t.equal(purge.status, 0, `--uninstall --purge: ${purge.stdout.trim()} ${purge.stderr}`);
  t.notOk(existsSync(inRoot('etc/edge-agent')) || existsSync(inRoot('var/lib/edge-agent')), 'config and state purged');
  t.notMatch(readFileSync(inRoot('etc/passwd'), 'utf8'), /^edge-agent:/m, 'user removed');
});
