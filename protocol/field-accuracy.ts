// Field accuracy as a device reports it with each model in models/reported (`field`), read by
// the controller's rollout gate (controller/rollout/plan.ts: minFieldGain, minFieldLabels).
// The agent counts (agent/learning/field-accuracy.ts); the controller checks the shape
// (controller/documents.ts) and sums over a stage's devices. Agents older than this field send
// none: their reports are accepted and count no labels.

/** Labelled rows a version answered and those it got right (top-1). */
export interface FieldTally {
  labelled: number;
  correct: number;
}

/** A served version and its shadow candidate scored on the same labelled rows (a paired comparison). */
export interface FieldPair {
  primary: string;
  shadow: string;
  labelled: number;
  primaryCorrect: number;
  shadowCorrect: number;
}

export interface FieldReport {
  /** Per version, every labelled row it predicted (served or in shadow). */
  versions: Record<string, FieldTally>;
  pairs: FieldPair[];
}
