// Loads the project's Node-API addon (native/). Everything native is reached through here.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Errors } from './errors.js';

export interface NativeAddon {
  sdNotify(state: string): number;
  cpuFeatures(): string;
  [name: string]: unknown;
}

/** The package root, whether running from agent/*.ts (tsx) or dist/agent/*.js. */
export const packageRoot: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('edge-agent: cannot find package.json above ' + dir);
    dir = up;
  }
  return dir;
})();

let cached: NativeAddon | undefined;

export function loadNative(): NativeAddon {
  if (cached) return cached;
  const file = process.env.EDGE_NATIVE_ADDON ?? path.join(packageRoot, 'build/native/Release/edge_native.node');
  if (!existsSync(file)) throw Errors.NATIVE_UNAVAILABLE(`${file} is missing`);
  const require = createRequire(import.meta.url);
  cached = require(file) as NativeAddon;
  return cached;
}
