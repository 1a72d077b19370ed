// Self-update with real processes (issue 23, docs/self-update.md): the agent runs under
// `edge-agent supervise` (what systemd's Restart= does), releases are small signed test
// releases (test/helpers/releases.ts) installed with `edge-agent update install`, which
// SIGTERMs the running agent after the link switch as the daemon's own update does by exiting.
// A good release is committed by the health gate; a release that crashes at start is rolled
// back by the boot guard after update.maxStarts starts; SIGKILL after every step leaves a
// running, verified release; the data directory survives; a tampered release and one for
// another architecture are refused and nothing changes.
import t, { type Test } from 'tap';
import { existsSync, readFileSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnAgentWithFile, type AgentProcess } from './helpers/agent.js';
import { waitFor } from './helpers/wait.js';
import { makeRelease, releaseKeys, updateCli, updateSite, type TestRelease, type UpdateSite } from './helpers/releases.js';
import { verifyRelease } from '../agent/update/release.js';
import type { UpdateState } from '../agent/update/layout.js';
import { execFileSync } from 'node:child_process';

t.setTimeout(480_000); // about 3-4 minutes on a shared 2-core machine: a dozen supervised agents started and stopped

const key = releaseKeys();
const stateOf = (s: UpdateSite): UpdateState => {
  try {
    return JSON.parse(readFileSync(path.join(s.dataDir, 'update', 'state.json'), 'utf8')) as UpdateState;
  } catch {
    return {};
  }
};
const supervisorOf = (s: UpdateSite): { childPid: number | null; version: string | null; starts: number; restarts: number } | undefined => {
  try {
    return JSON.parse(readFileSync(path.join(s.dataDir, 'update', 'supervisor.json'), 'utf8'));
  } catch {
    return undefined;
  }
};
const current = (s: UpdateSite): string => path.basename(realpathSync(path.join(s.root, 'current')));

function supervise(s: UpdateSite): AgentProcess {
  return spawnAgentWithFile(s.configFile, s.dir, { args: ['supervise', '--config', s.configFile, '--restart-delay-ms', '200'] });
}

/** The agent of this version serves: its child pid logged "edge-agent listening" and /readyz answers 200. */
async function serving(s: UpdateSite, sup: AgentProcess, version: string): Promise<void> {
  await waitFor(async () => {
    const st = supervisorOf(s);
    if (!st?.childPid || st.version !== version) return false;
    const line = [...sup.logs].reverse().find((l) => l.msg === 'edge-agent listening' && l.pid === st.childPid);
    if (!line) return false;
    const res = await fetch(`${String(line.url)}/readyz`);
    return res.status === 200;
  }, { timeoutMs: 40_000, what: `release ${version} serving` });
}

async function committed(s: UpdateSite, version: string): Promise<void> {
  await waitFor(() => stateOf(s).last?.outcome === 'committed' && stateOf(s).last?.version === version && !stateOf(s).pending, { timeoutMs: 40_000, what: `${version} committed` });
}

/** A site with release 1.0.0 installed, committed and serving under the supervisor. */
async function started(t: Test, releases: TestRelease[]): Promise<{ site: UpdateSite; sup: AgentProcess }> {
  const site = updateSite(key);
  const first = await updateCli(site, ['install', '--file', releases[0]!.file]);
  t.equal(first.code, 0, `first install: ${first.stderr}`);
  const sup = supervise(site);
  t.teardown(async () => {
    const gone = sup.exited();
    sup.kill('SIGTERM');
    await gone;
  });
  await committed(site, releases[0]!.version);
  await serving(site, sup, releases[0]!.version);
  writeFileSync(path.join(site.dataDir, 'survives.txt'), 'kept across updates\n');
  return { site, sup };
}

async function installAndRestart(t: Test, site: UpdateSite, rel: TestRelease, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const pid = supervisorOf(site)!.childPid!;
  const r = await updateCli(site, ['install', '--file', rel.file, '--restart-pid', String(pid)], env);
  t.equal(r.code, 0, `install ${rel.version}: ${r.stderr}`);
}

const dataSurvived = (t: Test, site: UpdateSite): void => {
  t.equal(readFileSync(path.join(site.dataDir, 'survives.txt'), 'utf8'), 'kept across updates\n', 'the data directory survived');
};

const v1 = makeRelease({ version: '1.0.0' }, key);
const v2 = makeRelease({ version: '2.0.0', dataFormat: 2 }, key);
const v3crash = makeRelease({ version: '3.0.0', crash: true }, key);
const v2same = makeRelease({ version: '2.0.0' }, key); // the data format of 1.0.0

t.test('a good release is installed, passes the gate and is committed; the data directory survives and migrates forward', async (t) => {
  const { site, sup } = await started(t, [await v1]);
  await installAndRestart(t, site, await v2);
  await committed(site, '2.0.0');
  await serving(site, sup, '2.0.0');
  t.equal(current(site), '2.0.0', 'current is 2.0.0');
  t.same(readdirSync(path.join(site.root, 'releases')).filter((n) => !n.startsWith('.')).sort(), ['1.0.0', '2.0.0'], 'the previous release stays beside it');
  t.equal(JSON.parse(readFileSync(path.join(site.dataDir, 'DATA_FORMAT'), 'utf8')).format, 2, 'the data format migrated to 2');
  await sup.waitForLog((l) => l.msg === 'self-update committed' && l.version === '2.0.0', 20_000, 'the commit logged');
  t.pass('the new agent logged the commit');
  dataSurvived(t, site);
});

t.test('a release that crashes at start is rolled back after maxStarts starts; the previous release serves again', async (t) => {
  const { site, sup } = await started(t, [await v1]);
  await installAndRestart(t, site, await v3crash);
  await waitFor(() => stateOf(site).last?.outcome === 'rolled-back', { timeoutMs: 40_000, what: 'the rollback' });
  const last = stateOf(site).last!;
  t.equal(last.version, '3.0.0');
  t.match(last.reason, /crash loop: 3 starts of 3\.0\.0 without passing the health gate/, 'the reason names the crash loop');
  t.equal(current(site), '1.0.0', 'current is back at 1.0.0');
  await serving(site, sup, '1.0.0');
  t.match(sup.stderr(), /test release: crashing at start/, 'the new release did crash');
  dataSurvived(t, site);
});

t.test('a rollback to a release that cannot read the migrated data directory is refused with the reason', async (t) => {
  const site = updateSite(key);
  t.equal((await updateCli(site, ['install', '--file', (await v1).file])).code, 0);
  // Every release dies in its health gate (after it migrated the data directory), at every start.
  const sup = spawnAgentWithFile(site.configFile, site.dir, { args: ['supervise', '--config', site.configFile, '--restart-delay-ms', '200'], env: { EDGE_FAULT_KILL_UPDATE_AT: 'gate' } });
  t.teardown(async () => { const gone = sup.exited(); sup.kill('SIGTERM'); await gone; });
  await waitFor(() => stateOf(site).last?.version === '1.0.0', { timeoutMs: 40_000, what: 'the first install settled' });
  t.equal(stateOf(site).last?.outcome, 'rollback-refused', 'the first install has nothing to go back to');
  await serving(site, sup, '1.0.0');
  writeFileSync(path.join(site.dataDir, 'survives.txt'), 'kept across updates\n');
  await installAndRestart(t, site, await v2); // data format 2; 1.0.0 reads only 1
  await waitFor(() => stateOf(site).last?.version === '2.0.0', { timeoutMs: 40_000, what: '2.0.0 settled' });
  const last = stateOf(site).last!;
  t.equal(last.outcome, 'rollback-refused');
  t.match(last.reason, /crash loop: 3 starts of 2\.0\.0.*rollback to 1\.0\.0 refused: the data directory .* is in format 2, written by a newer release; 1\.0\.0 reads formats up to 1/);
  t.equal(current(site), '2.0.0', 'the release that reads the data stays');
  await serving(site, sup, '2.0.0');
  dataSurvived(t, site);
});

t.test('SIGKILL after each step of an update leaves a running, verified release', async (t) => {
  for (const step of ['downloaded', 'unpacked', 'pending', 'switched'] as const) {
    await t.test(`killed after "${step}"`, async (t) => {
      const { site, sup } = await started(t, [await v1]);
      const r = await updateCli(site, ['install', '--file', (await v2).file], { EDGE_FAULT_KILL_UPDATE_AT: step });
      t.equal(r.signal, 'SIGKILL', `the installer died after ${step}`);
      // Power loss: the running agent dies too, and the supervisor starts what current names.
      const before = supervisorOf(site)!.childPid!;
      process.kill(before, 'SIGKILL');
      const expect = step === 'switched' ? '2.0.0' : '1.0.0';
      await waitFor(() => { const st = supervisorOf(site); return st?.childPid && st.childPid !== before; }, { timeoutMs: 20_000, what: 'the restart' });
      if (step === 'switched') await committed(site, '2.0.0');
      await serving(site, sup, expect);
      t.equal(current(site), expect, `current is ${expect}`);
      await verifyRelease(path.join(site.root, 'releases', expect), { trustedKeysPem: [key.publicKeyPem], arch: process.arch, force: true });
      t.pass(`releases/${expect} verifies`);
      t.notOk(stateOf(site).pending, 'no update is left pending');
      if (step === 'pending') t.equal(stateOf(site).last?.outcome, 'interrupted', 'the interrupted update is reported');
      if (step !== 'switched') {
        await installAndRestart(t, site, await v2);
        await committed(site, '2.0.0');
        await serving(site, sup, '2.0.0');
        t.pass('the update done again completes');
      }
      dataSurvived(t, site);
    });
  }
  await t.test('killed during the health gate, at every start: rolled back', async (t) => {
    const site = updateSite(key);
    t.equal((await updateCli(site, ['install', '--file', (await v1).file])).code, 0);
    const sup = spawnAgentWithFile(site.configFile, site.dir, { args: ['supervise', '--config', site.configFile, '--restart-delay-ms', '200'], env: { EDGE_FAULT_KILL_UPDATE_AT: 'gate' } });
    t.teardown(async () => { const gone = sup.exited(); sup.kill('SIGTERM'); await gone; });
    // The first install (1.0.0, from nothing) has no release to go back to: it is refused, and 1.0.0 serves on.
    await waitFor(() => stateOf(site).last?.outcome, { timeoutMs: 40_000, what: 'the first install settled' });
    t.equal(stateOf(site).last?.outcome, 'rollback-refused');
    t.match(stateOf(site).last?.reason, /no previous release/);
    await serving(site, sup, '1.0.0');
    await installAndRestart(t, site, await v2same);
    await waitFor(() => stateOf(site).last?.version === '2.0.0', { timeoutMs: 40_000, what: '2.0.0 settled' });
    t.equal(stateOf(site).last?.outcome, 'rolled-back', 'killed in the gate at every start: rolled back');
    t.match(stateOf(site).last?.reason, /crash loop/);
    await serving(site, sup, '1.0.0');
    t.equal(current(site), '1.0.0');
  });
});

t.test('a tampered release, one for another architecture and one signed by another key are refused; nothing changes', async (t) => {
  const site = updateSite(key);
  t.equal((await updateCli(site, ['install', '--file', (await v1).file])).code, 0);
  const snapshot = (): string => JSON.stringify({ cur: current(site), rel: readdirSync(path.join(site.root, 'releases')).sort(), state: stateOf(site) });
  const before = snapshot();

  const good = await makeRelease({ version: '5.0.0' }, key);
  writeFileSync(path.join(good.dir, 'bin', 'edge-agent-launch'), '#!/bin/sh\necho tampered\n');
  const tampered = path.join(path.dirname(good.file), 'tampered.tar.gz');
  execFileSync('tar', ['-C', good.dir, '-czf', tampered, '.']);
  const other = await makeRelease({ version: '6.0.0', arch: process.arch === 'arm64' ? 'x64' : 'arm64' }, key);
  const stranger = await makeRelease({ version: '7.0.0' }, releaseKeys());

  const cases: [string, string, RegExp][] = [
    ['tampered', tampered, /EDGE_UPDATE_RELEASE_REFUSED|refused: .*does not match its sha256.*changed after signing/],
    ['another architecture', other.file, /built for (arm64|x64), this machine is (x64|arm64)/],
    ['another key', stranger.file, /not among the trusted keys/],
  ];
  for (const [what, file, why] of cases) {
    const r = await updateCli(site, ['install', '--file', file]);
    t.not(r.code, 0, `${what}: refused`);
    t.match(r.stderr, why, `${what}: ${r.stderr.trim()}`);
    t.match(r.stderr, /nothing was changed/);
    t.equal(snapshot(), before, `${what}: nothing changed`);
  }
  const older = await updateCli(site, ['install', '--file', (await makeRelease({ version: '0.9.0' }, key)).file]);
  t.match(older.stderr, /not newer than the running 1\.0\.0/, 'an older release needs --force');
  t.equal(snapshot(), before);
});

t.test('a release that starts but never gets ready (no broker) is rolled back when update.gateTimeoutMs passes', async (t) => {
  // A broker that is not there: no release can pass the gate's "connected".
  const site = updateSite(key, { mqtt: { url: 'mqtt://127.0.0.1:1', reconnectMinMs: 50, reconnectMaxMs: 200 } });
  const cfg = JSON.parse(readFileSync(site.configFile, 'utf8'));
  cfg.update = { root: site.root, gateTimeoutMs: 1500, maxStarts: 3, trustedKeys: [path.join(site.dir, 'release.pub')] };
  writeFileSync(site.configFile, JSON.stringify(cfg));
  t.equal((await updateCli(site, ['install', '--file', (await v1).file])).code, 0);
  const sup = supervise(site);
  t.teardown(async () => { const gone = sup.exited(); sup.kill('SIGTERM'); await gone; });
  await waitFor(() => stateOf(site).last?.version === '1.0.0', { timeoutMs: 30_000, what: 'the first install settled' });
  t.equal(stateOf(site).last?.outcome, 'rollback-refused', 'the first install has nothing to go back to, and runs on');
  await waitFor(() => supervisorOf(site)?.childPid, { timeoutMs: 20_000, what: '1.0.0 running' });
  await installAndRestart(t, site, await v2same);
  await waitFor(() => stateOf(site).last?.version === '2.0.0', { timeoutMs: 30_000, what: '2.0.0 settled' });
  t.equal(stateOf(site).last?.outcome, 'rolled-back');
  t.match(stateOf(site).last?.reason, /health gate: not ready within 1500 ms \(not connected to the fleet broker\)/);
  await waitFor(() => supervisorOf(site)?.version === '1.0.0' && supervisorOf(site)?.childPid, { timeoutMs: 20_000, what: '1.0.0 started again' });
  t.equal(current(site), '1.0.0');
  await sup.waitForLog((l) => l.msg === 'self-update: health gate failed' && l.version === '2.0.0', 10_000, 'the gate failure logged');
  t.pass('the new release logged the gate failure and exited');
});
