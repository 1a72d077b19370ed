// Small agent releases for the self-update tests: a release folder whose launcher
// (bin/edge-agent-launch) runs this checkout's dist/ with the system's node, with its
// RELEASE.json, signed and packed exactly like a real one (agent/update/release.ts). A
// "crashing" release's launcher exits at once, before the agent starts.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packRelease } from '../../agent/update/release.js';
import { sha256OfFile } from '../../agent/models/download.js';
import { generateKeyPair, type KeyPair } from '../../agent/security/signing.js';
import { agentCli, writeConfig } from './agent.js';

const run = promisify(execFile);

export interface TestRelease {
  version: string;
  dir: string;
  file: string;
  sha256: string;
}

export interface ReleaseSpec {
  version: string;
  arch?: string;
  dataFormat?: number;
  maxDataFormat?: number;
  /** The launcher exits with status 3 at once. */
  crash?: boolean;
}

export function releaseKeys(): KeyPair {
  return generateKeyPair();
}

export async function makeRelease(spec: ReleaseSpec, key: KeyPair, work = mkdtempSync(path.join(tmpdir(), 'edge-rel-'))): Promise<TestRelease> {
  const dir = path.join(work, `rel-${spec.version}`);
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  writeFileSync(path.join(dir, 'RELEASE.json'), JSON.stringify({
    name: 'edge-agent', version: spec.version, arch: spec.arch ?? process.arch, dataFormat: spec.dataFormat ?? 1, maxDataFormat: spec.maxDataFormat ?? spec.dataFormat ?? 1,
  }) + '\n');
  const launch = path.join(dir, 'bin', 'edge-agent-launch');
  writeFileSync(launch, spec.crash
    ? '#!/bin/sh\necho "test release: crashing at start" >&2\nexit 3\n'
    : `#!/bin/sh\nexec "${process.execPath}" "${agentCli}" "$@"\n`);
  chmodSync(launch, 0o755);
  const file = path.join(work, `edge-agent-${spec.version}.tar.gz`);
  await packRelease(dir, key.privateKeyPem, file);
  return { version: spec.version, dir, file, sha256: await sha256OfFile(file) };
}

export interface UpdateSite {
  root: string;
  dataDir: string;
  configFile: string;
  dir: string;
}

/** A config with update.root, the release key trusted, no models and no broker. */
export function updateSite(key: KeyPair, extra: Record<string, unknown> = {}): UpdateSite {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-upd-'));
  const root = path.join(dir, 'opt');
  mkdirSync(root);
  writeFileSync(path.join(dir, 'release.pub'), key.publicKeyPem);
  const { file } = writeConfig({
    deviceId: 'pi-update-1',
    security: { requireSignedPackages: false },
    update: { root, gateTimeoutMs: 20_000, maxStarts: 3, trustedKeys: [path.join(dir, 'release.pub')] },
    ...extra,
  }, dir);
  return { root, dataDir: path.join(dir, 'data'), configFile: file, dir };
}

/** `edge-agent update ...` as a child process: its status, stdout and stderr. */
export async function updateCli(site: UpdateSite, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [agentCli, 'update', ...args, '--config', site.configFile], { env: { ...process.env, EDGE_AGENT_CLI: '1', ...env } });
    return { code: 0, signal: null, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; signal?: string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : null, signal: e.signal ?? null, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
