// The addon's NativeEngine class, typed. Creating one checks and builds the plan in C++; a
// refusal there becomes EDGE_NATIVE_PLAN_INVALID with the engine's own sentence.
import { loadNative } from '../../native.js';
import { EdgeError, Errors } from '../../errors.js';
import type { Plan, WeightBuffer } from './plan.js';

export type EngineArray = Float32Array | Uint8Array | Int8Array;

export interface EngineFacts {
  variant: string;
  threads: number;
  steps: number;
  arenaBytes: number;
  tensorBytes: number;
  scratchBytes: number;
  weightBytes: number;
  inputs: { name: string; dtype: string; shape: number[] }[];
  outputs: { name: string; dtype: string; shape: number[] }[];
}

export interface NativeEngine {
  /** Runs on the calling thread. */
  run(inputs: EngineArray[]): EngineArray[];
  /** Runs on the libuv thread pool; runs on one engine are serialised in C++. */
  runAsync(inputs: EngineArray[]): Promise<EngineArray[]>;
  describe(): EngineFacts;
  dispose(): void;
}

interface EngineCtor {
  new (plan: unknown, weights: unknown, options?: { threads?: number }): NativeEngine;
}

/** Builds an engine; plan and weights may be anything (the engine refuses what is malformed). */
export function createEngine(plan: Plan | unknown, weights: WeightBuffer[] | unknown, options: { threads?: number } = {}): NativeEngine {
  const addon = loadNative();
  const Ctor = addon.NativeEngine as EngineCtor | undefined;
  if (typeof Ctor !== 'function') throw Errors.NATIVE_UNAVAILABLE('the addon has no NativeEngine (rebuild it)');
  try {
    return new Ctor(plan, weights, options);
  } catch (err) {
    if (err instanceof EdgeError) throw err;
    throw Errors.NATIVE_PLAN_INVALID((err as Error).message);
  }
}

export function kernelVariant(): string {
  const f = loadNative().kernelVariant as (() => string) | undefined;
  return f ? f() : 'unknown';
}
