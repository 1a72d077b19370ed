// The real release file (`npm run release -- --arch x64`) is a release the self-updater takes:
// signed by `edge-agent release pack` with a throwaway key (what `npm run release -- --key`
// does), installed by `edge-agent update install` into a throwaway root, then started from
// <root>/current under `edge-agent supervise` on its own bundled Node.js, and ready.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { agentCli, root as repoRoot, spawnAgentWithFile, writeConfig } from './helpers/agent.js';
import { releaseKeys } from './helpers/releases.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(600_000); // building the x64 release when it is missing: about 2-5 minutes on a shared 2-core machine

t.test('the x64 release file, signed, installs with edge-agent update install and serves under edge-agent supervise', { skip: process.arch !== 'x64' ? 'the x64 release runs on x64 only' : false }, async (t) => {
  const version: string = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version;
  const name = `edge-agent-${version}-linux-x64`;
  const tarball = path.join(repoRoot, `build/release/${name}.tar.gz`);
  if (!existsSync(tarball)) {
    // As test/deploy-install.test.ts: CI builds it first; a fresh machine builds it here.
    const built = spawnSync('bash', [path.join(repoRoot, 'scripts/release.sh'), '--arch', 'x64', '--if-missing'], { cwd: repoRoot, encoding: 'utf8', timeout: 480_000 });
    if (built.status !== 0 || !existsSync(tarball)) {
      t.fail(`${tarball} is missing and npm run release -- --arch x64 failed (exit ${built.status}): ${(built.stderr ?? '').slice(-2000)}`);
      return;
    }
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-release-upd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.equal(spawnSync('tar', ['-C', dir, '-xzf', tarball]).status, 0, `unpacked ${path.basename(tarball)}`);
  const rel = path.join(dir, name);
  const links = spawnSync('find', [rel, '-type', 'l'], { encoding: 'utf8' }).stdout.trim();
  t.equal(links, '', 'the release file holds no symbolic links (the signed format refuses them)');

  // Signed with a throwaway key.
  const key = releaseKeys();
  writeFileSync(path.join(dir, 'release.key'), key.privateKeyPem, { mode: 0o600 });
  writeFileSync(path.join(dir, 'release.pub'), key.publicKeyPem);
  const signed = path.join(dir, `${name}.release.tar.gz`);
  const pack = spawnSync(process.execPath, [agentCli, 'release', 'pack', '--dir', rel, '--key', path.join(dir, 'release.key'), '--out', signed], { encoding: 'utf8' });
  t.equal(pack.status, 0, `release pack: ${pack.stderr}`);

  // Installed by the self-updater into a throwaway root.
  const root = path.join(dir, 'opt');
  const { file: configFile } = writeConfig({
    deviceId: 'pi-release-1',
    security: { requireSignedPackages: false },
    update: { root, gateTimeoutMs: 30_000, maxStarts: 3, trustedKeys: [path.join(dir, 'release.pub')] },
  }, dir);
  const install = spawnSync(process.execPath, [agentCli, 'update', 'install', '--config', configFile, '--file', signed], { encoding: 'utf8', env: { ...process.env, EDGE_AGENT_CLI: '1' } });
  t.equal(install.status, 0, `update install: ${install.stdout}${install.stderr}`);
  t.ok(lstatSync(path.join(root, 'current')).isSymbolicLink(), 'current is a link');
  t.equal(path.basename(readlinkSync(path.join(root, 'current'))), version, `current -> releases/${version}`);
  t.ok(existsSync(path.join(root, 'current/node/bin/node')), 'the bundled Node.js installed with it');

  // Started from current by the supervisor: the release's own node and dist.
  const sup = spawnAgentWithFile(configFile, dir, { args: ['supervise', '--config', configFile, '--restart-delay-ms', '200'] });
  t.teardown(async () => {
    const gone = sup.exited();
    sup.kill('SIGTERM');
    await gone;
  });
  const supervisorOf = (): { childPid: number | null; version: string | null } | undefined => {
    try {
      return JSON.parse(readFileSync(path.join(dir, 'data/update/supervisor.json'), 'utf8'));
    } catch {
      return undefined;
    }
  };
  let url = '';
  await waitFor(async () => {
    const st = supervisorOf();
    if (!st?.childPid || st.version !== version) return false;
    const line = [...sup.logs].reverse().find((l) => l.msg === 'edge-agent listening' && l.pid === st.childPid);
    if (!line) return false;
    url = String(line.url);
    return (await fetch(`${url}/readyz`)).status === 200;
  }, { timeoutMs: 120_000, what: () => `release ${version} ready under the supervisor (${sup.stderr().slice(-500)})` });
  const status = await (await fetch(`${url}/v1/status`)).json() as Record<string, unknown>;
  const bundled = `v${JSON.parse(readFileSync(path.join(rel, 'RELEASE.json'), 'utf8')).node}`;
  t.match(status, { arch: 'x64', node: bundled }, `the supervised agent runs on the release's own Node.js (${String(status.node)})`);
  await waitFor(() => {
    try {
      const st = JSON.parse(readFileSync(path.join(dir, 'data/update/state.json'), 'utf8'));
      return st.last?.outcome === 'committed' && st.last?.version === version && !st.pending;
    } catch {
      return false;
    }
  }, { timeoutMs: 60_000, what: `${version} committed by its health gate` });
  t.pass(`${version} passed its health gate and is committed`);
});
