// Replicas on one database carry each rollout out once: the replica holding a rollout's lease
// acts, the other waits; when the holder stops renewing (killed), the other takes the rollout
// over once the lease expires and carries on from the stored plan. Two drivers on one SQLite
// file (the lease itself is also in the store contract, on SQLite and PostgreSQL).
import t from 'tap';
import path from 'node:path';
import { RolloutDriver, type FleetPort, type RolloutBook } from '../controller/rollout/driver.js';
import { DEFAULT_GATES, type DeviceReport } from '../controller/rollout/plan.js';
import { RolloutStore } from '../controller/rollout/store.js';
import { SqliteControllerStore } from '../controller/store/sqlite.js';
import { PostgresControllerStore } from '../controller/store/postgres.js';
import type { ControllerStore } from '../controller/store/types.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import type { Test } from 'tap';
import { waitFor } from './helpers/wait.js';

t.setTimeout(60_000);

let pg: Postgres | undefined;
t.teardown(() => pg?.stop());

/** Two replicas' stores on one database, and the rollout books their drivers use. */
async function replicas(t: Test, backend: 'sqlite' | 'postgres'): Promise<{ a: ControllerStore; b: ControllerStore; bookA: RolloutBook; bookB: RolloutBook }> {
  if (backend === 'sqlite') {
    const file = path.join(t.testdir(), 'fleet.db');
    const a = SqliteControllerStore.open(file);
    const b = SqliteControllerStore.open(file);
    t.teardown(() => { a.sync.close(); b.sync.close(); });
    return { a, b, bookA: new RolloutStore(a.sync.db), bookB: new RolloutStore(b.sync.db) };
  }
  pg ??= await startPostgres();
  const url = await pg.createDatabase('lease');
  const a = await PostgresControllerStore.open(url);
  const b = await PostgresControllerStore.open(url);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  return { a, b, bookA: a.rollouts, bookB: b.rollouts };
}

/** A fleet of device reports; records every desired-state write and who made it. */
class CountingFleet implements FleetPort {
  readonly devices = Array.from({ length: 20 }, (_, i) => `pi-${i}`);
  readonly writes: { replica: string; device: string; version: string }[] = [];
  readonly reportsBy = new Map<string, DeviceReport>();
  groupMembers(): string[] { return this.devices; }
  reports(): Map<string, DeviceReport> { return this.reportsBy; }
  currentVersion(): string { return '1.0.0'; }
  port(replica: string): FleetPort {
    return { ...this, groupMembers: () => this.groupMembers(), reports: () => this.reports(), currentVersion: () => this.currentVersion(),
      setDesired: async (device, _m, version) => { this.writes.push({ replica, device, version }); } };
  }
  async setDesired(): Promise<void> { throw new Error('use port(replica)'); }
  settle(version: string): void {
    for (const w of this.writes) if (w.version === version) this.reportsBy.set(w.device, { version, state: 'committed' });
  }
}

for (const backend of ['sqlite', 'postgres'] as const) t.test(`${backend}: two replicas: each step once, and the survivor takes a dead replica's rollout over`, async (t) => {
  const { a, b, bookA, bookB } = await replicas(t, backend);
  const fleet = new CountingFleet();
  // Long enough that no pass of a loaded machine outlasts it before the "kill" below.
  const leaseMs = 2000;
  const stores = { a, b };
  const alive = { a: true, b: true };
  const renewed = { a: 0, b: 0 };
  const leaseOf = (name: 'a' | 'b') => (id: string) => {
    if (!alive[name]) return false;
    renewed[name] = Date.now();
    return stores[name].rollouts.lease(id, name, leaseMs);
  };
  const drivers = {
    a: new RolloutDriver(bookA, fleet.port('a'), undefined, leaseOf('a')),
    b: new RolloutDriver(bookB, fleet.port('b'), undefined, leaseOf('b')),
  };
  const r = { id: 'ro-lease', model: 'digits', version: '2.0.0', group: 'all', stages: [10, 50, 100], gates: DEFAULT_GATES, stageIndex: 0, stageStartedAt: Date.now(), state: 'running' as const, createdAt: Date.now() };
  await a.rollouts.create(r);

  // Each replica's loop runs one pass at a time (RolloutLoop.kick); the two replicas run at
  // once and race for the lease: either may win, and only the winner acts.
  await Promise.all([drivers.a.tick(), drivers.b.tick()]);
  await Promise.all([drivers.b.tick(), drivers.a.tick()]);
  const first = fleet.writes.map((w) => w.device);
  t.ok(first.length >= 1, `the first stage was assigned (${first.length} devices)`);
  const holder = fleet.writes[0]!.replica as 'a' | 'b';
  const survivor = holder === 'a' ? 'b' : 'a';
  t.same(new Set(fleet.writes.map((w) => w.replica)), new Set([holder]), `by the replica that took the lease (${holder}) only`);
  t.equal(new Set(first).size, first.length, 'each device told once');

  // The holder dies: it stops renewing. The survivor takes over once the lease has expired, not before.
  alive[holder] = false;
  fleet.settle('2.0.0');
  await drivers[survivor].tick();
  t.equal(fleet.writes.length, first.length, 'while the holder\'s lease runs, the other replica does nothing');
  await waitFor(async () => { fleet.settle('2.0.0'); await drivers[survivor].tick(); return (await stores[survivor].rollouts.get(r.id))!.state === 'completed'; },
    { timeoutMs: 10_000, what: `replica ${survivor} to complete the rollout` });
  const took = Date.now() - renewed[holder];
  t.ok(took >= leaseMs, `taken over after the lease expired (${took} ms after the holder's last renewal, lease ${leaseMs} ms)`);
  t.same(new Set(fleet.writes.filter((w) => !first.includes(w.device)).map((w) => w.replica)), new Set([survivor]), 'the later stages by the survivor');
  const devices = fleet.writes.map((w) => w.device);
  t.equal(devices.length, 20, 'every device told to run 2.0.0');
  t.equal(new Set(devices).size, 20, 'each exactly once across the two replicas');
});
