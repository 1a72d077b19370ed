// Power-cut honesty, measured on the real process with strace: what reaches stable storage
// at COMMIT. A power cut loses what the kernel had not written out yet, so a commit is
// power-safe exactly when the WAL was fsynced before COMMIT returned (docs/telemetry.md).
//   synchronous=normal, metrics: no fsync of the WAL per commit -> the commits since the last
//     checkpoint may be lost by a power cut (never corrupted: the WAL frames are checksummed).
//   synchronous=normal, alerts (durable "full"): the WAL is fsynced at every commit.
//   synchronous=full: the WAL is fsynced at every commit.
//   lease() under synchronous=normal: fsyncs the WAL before a record leaves the device, so a
//     power cut never loses a record the controller has already seen.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.join(root, 'test/fixtures/telemetry-sync.ts');

/** fsync/fdatasync calls on the WAL between the child's two marker files (20 commits). */
function walSyncs(t: Test, synchronous: string, stream: string, mode = ''): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'telemetry-sync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const trace = path.join(dir, 'strace.out');
  const r = spawnSync('strace', ['-f', '--seccomp-bpf', '-y', '-e', 'trace=fsync,fdatasync,mkdir,mkdirat', '-o', trace, process.execPath, '--import', 'tsx', fixture, dir, synchronous, stream, mode], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `child under strace exits 0 ${r.error ? String(r.error) : ''}${r.stderr.slice(0, 300)}`);
  const lines = readFileSync(trace, 'utf8').split('\n');
  const begin = lines.findIndex((l) => l.includes('MARK-BEGIN'));
  const end = lines.findIndex((l) => l.includes('MARK-END'));
  t.ok(begin > 0 && end > begin, 'both markers traced');
  return lines.slice(begin, end).filter((l) => /f(data)?sync\(\d+<[^>]*telemetry\.db-wal>\)/.test(l)).length;
}

t.test('synchronous=normal: metrics commits are not fsynced (a power cut may lose the last ones)', async (t) => {
  t.equal(walSyncs(t, 'normal', 'metrics'), 0, 'no WAL fsync in 20 commits');
});

t.test('synchronous=normal: alerts are durable "full": each commit fsyncs the WAL', async (t) => {
  const n = walSyncs(t, 'normal', 'alerts');
  t.ok(n >= 20, `${n} WAL fsyncs for 20 commits`);
});

t.test('synchronous=normal: record(..., { durable: "full" }) fsyncs the commit holding it', async (t) => {
  const n = walSyncs(t, 'normal', 'metrics', 'durable');
  t.ok(n >= 20, `${n} WAL fsyncs for 20 commits`);
});

t.test('synchronous=full: each commit fsyncs the WAL', async (t) => {
  const n = walSyncs(t, 'full', 'metrics');
  t.ok(n >= 20, `${n} WAL fsyncs for 20 commits`);
});

t.test('synchronous=normal: lease() makes its records durable before they leave the device', async (t) => {
  const n = walSyncs(t, 'normal', 'metrics', 'lease');
  t.ok(n >= 20, `${n} WAL fsyncs for 20 leases`);
});
