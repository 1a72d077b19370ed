// Corruption recovery: a database that fails its integrity check (at open, or any write later)
// is moved aside and the buffer starts a fresh one. What the old file still shows is salvaged
// to keep sequence numbers rising, and an alert record tells the fleet what was lost.
import { moveAside, salvage } from './store.js';

export interface MovedAside {
  /** Where the corrupt file went. */
  movedTo: string;
  /** The next sequence number the old file showed (0 when unreadable). */
  salvagedSeq: number;
  /** Records that were queued in the old file and are lost with it. */
  lost: number;
  /** The new file's sequence numbers start at or above this. */
  floor: number;
}

/**
 * Moves the corrupt file aside. queuedInMemory is what the buffer counted as committed in
 * it; nextSeq the buffer's next sequence number.
 */
export function moveCorruptFileAside(file: string, queuedInMemory: number, nextSeq: number): MovedAside {
  const old = salvage(file);
  const movedTo = moveAside(file);
  const lost = Math.max(old.queued, queuedInMemory);
  // Keep sequence numbers rising past anything the old file may have sent: the salvaged
  // value when readable, and a clock-based floor (µs since the epoch) in case it was not.
  const floor = Math.max(nextSeq, old.nextSeq, Date.now() * 1000);
  return { movedTo, salvagedSeq: old.nextSeq, lost, floor };
}

/** The payload of the alert record the fresh database starts with. */
export function corruptionAlert(error: string, moved: MovedAside): string {
  return JSON.stringify({
    kind: 'telemetry_database_corrupt',
    error,
    movedTo: moved.movedTo,
    salvagedSeq: moved.salvagedSeq,
    queuedRecordsInOldFile: moved.lost,
    message: 'the telemetry database was corrupt and was moved aside; records queued in it were not sent',
  });
}
