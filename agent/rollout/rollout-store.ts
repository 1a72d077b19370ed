// The rollout state of every model, in its own small SQLite file with synchronous=FULL: which
// version is committed (active), which was before it, which candidate is on probation, and how
// many times the agent has started while that candidate was on probation (the crash-loop
// counter). ("Slot" is the runtime's word, agent/runtime/slot.ts: where a model is served in
// memory. The file and table names, slots.db and slots, stay as devices already have them.)
import Database from 'better-sqlite3';
import path from 'node:path';

export type CandidatePhase = 'shadow' | 'probation';

export interface RolloutVersion {
  version: string;
  dir: string;
}

export interface RolloutRecord {
  model: string;
  active?: RolloutVersion;
  previous?: RolloutVersion;
  candidate?: RolloutVersion & { phase: CandidatePhase; boots: number; since: number };
}

export interface RolloutEvent {
  model: string;
  version: string;
  step: string;
  reason?: string;
  evidence?: unknown;
  at: number;
}

export class RolloutStore {
  readonly #db: Database.Database;

  constructor(dataDir: string) {
    this.#db = new Database(path.join(dataDir, 'slots.db'));
    this.#db.pragma('journal_mode = WAL');
    // A rollout change is rare and must survive a power cut: fsync every commit.
    this.#db.pragma('synchronous = FULL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS slots (
        model TEXT PRIMARY KEY,
        active_version TEXT, active_dir TEXT,
        previous_version TEXT, previous_dir TEXT,
        candidate_version TEXT, candidate_dir TEXT, candidate_phase TEXT,
        candidate_boots INTEGER NOT NULL DEFAULT 0, candidate_since INTEGER
      );
      CREATE TABLE IF NOT EXISTS slot_events (
        id INTEGER PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, step TEXT NOT NULL,
        reason TEXT, evidence TEXT, at INTEGER NOT NULL
      );`);
  }

  close(): void {
    this.#db.close();
  }

  get(model: string): RolloutRecord {
    const r = this.#db.prepare('SELECT * FROM slots WHERE model = ?').get(model) as Row | undefined;
    return r ? fromRow(r) : { model };
  }

  all(): RolloutRecord[] {
    return (this.#db.prepare('SELECT * FROM slots ORDER BY model').all() as Row[]).map(fromRow);
  }

  put(s: RolloutRecord): void {
    this.#db.prepare(`INSERT INTO slots (model, active_version, active_dir, previous_version, previous_dir,
        candidate_version, candidate_dir, candidate_phase, candidate_boots, candidate_since)
      VALUES (@model, @av, @ad, @pv, @pd, @cv, @cd, @cp, @cb, @cs)
      ON CONFLICT(model) DO UPDATE SET active_version=@av, active_dir=@ad, previous_version=@pv, previous_dir=@pd,
        candidate_version=@cv, candidate_dir=@cd, candidate_phase=@cp, candidate_boots=@cb, candidate_since=@cs`).run({
      model: s.model,
      av: s.active?.version ?? null, ad: s.active?.dir ?? null,
      pv: s.previous?.version ?? null, pd: s.previous?.dir ?? null,
      cv: s.candidate?.version ?? null, cd: s.candidate?.dir ?? null, cp: s.candidate?.phase ?? null,
      cb: s.candidate?.boots ?? 0, cs: s.candidate?.since ?? null,
    });
  }

  /** Counts one more start of the agent while each candidate is on probation; returns the new counts. */
  countBoot(): Map<string, number> {
    const out = new Map<string, number>();
    this.#db.transaction(() => {
      this.#db.prepare('UPDATE slots SET candidate_boots = candidate_boots + 1 WHERE candidate_version IS NOT NULL').run();
      for (const r of this.#db.prepare('SELECT model, candidate_boots FROM slots WHERE candidate_version IS NOT NULL').all() as { model: string; candidate_boots: number }[]) {
        out.set(r.model, r.candidate_boots);
      }
    })();
    return out;
  }

  /** A clean shutdown is not a crash: the counter starts again from zero. */
  resetBoots(): void {
    this.#db.prepare('UPDATE slots SET candidate_boots = 0').run();
  }

  /** Versions rolled back on this device (newest event per version). */
  refusedVersions(): RolloutEvent[] {
    return (this.#db.prepare("SELECT model, version, step, reason, at FROM slot_events WHERE step = 'rolled_back' ORDER BY id").all() as
      { model: string; version: string; step: string; reason: string | null; at: number }[])
      .map((r) => ({ model: r.model, version: r.version, step: r.step, reason: r.reason ?? undefined, at: r.at }));
  }

  event(e: Omit<RolloutEvent, 'at'>): RolloutEvent {
    const at = Date.now();
    this.#db.prepare('INSERT INTO slot_events (model, version, step, reason, evidence, at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(e.model, e.version, e.step, e.reason ?? null, e.evidence === undefined ? null : JSON.stringify(e.evidence), at);
    return { ...e, at };
  }

  events(model: string, limit = 50): RolloutEvent[] {
    return (this.#db.prepare('SELECT * FROM slot_events WHERE model = ? ORDER BY id DESC LIMIT ?').all(model, limit) as
      { model: string; version: string; step: string; reason: string | null; evidence: string | null; at: number }[])
      .reverse()
      .map((r) => ({ model: r.model, version: r.version, step: r.step, reason: r.reason ?? undefined, evidence: r.evidence ? JSON.parse(r.evidence) : undefined, at: r.at }));
  }
}

interface Row {
  model: string; active_version: string | null; active_dir: string | null; previous_version: string | null; previous_dir: string | null;
  candidate_version: string | null; candidate_dir: string | null; candidate_phase: CandidatePhase | null; candidate_boots: number; candidate_since: number | null;
}

function fromRow(r: Row): RolloutRecord {
  return {
    model: r.model,
    active: r.active_version ? { version: r.active_version, dir: r.active_dir! } : undefined,
    previous: r.previous_version ? { version: r.previous_version, dir: r.previous_dir! } : undefined,
    candidate: r.candidate_version
      ? { version: r.candidate_version, dir: r.candidate_dir!, phase: r.candidate_phase ?? 'probation', boots: r.candidate_boots, since: r.candidate_since ?? 0 }
      : undefined,
  };
}
