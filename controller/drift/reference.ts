// A model version's drift reference, read from the package published to the controller.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { extractArchive } from '../../agent/models/archive.js';
import { MANIFEST_FILE } from '../../agent/models/manifest.js';
import { MANIFEST_ONLY } from '../../agent/models/verify.js';
import type { DriftReference } from '../../agent/drift/reference.js';
import type { FleetStore } from '../store.js';

export async function referenceFromStore(store: FleetStore, model: string, version: string): Promise<DriftReference | undefined> {
  const art = store.artifact({ name: model, version });
  if (!art) return undefined;
  const parts: Buffer[] = [];
  for (let i = 0; i < art.chunks.length; i++) {
    const c = store.chunk(art.sha256, i);
    if (!c) return undefined;
    parts.push(c);
  }
  const tmp = mkdtempSync(path.join(tmpdir(), 'edge-fleet-drift-'));
  try {
    const file = path.join(tmp, 'package.edgepkg');
    writeFileSync(file, Buffer.concat(parts));
    await extractArchive(file, path.join(tmp, 'pkg'), { verifier: MANIFEST_ONLY });
    const manifest = JSON.parse(readFileSync(path.join(tmp, 'pkg', MANIFEST_FILE), 'utf8')) as { drift?: unknown };
    const d = manifest.drift as DriftReference | undefined;
    return d && typeof d === 'object' && d.format === 'edge-drift-reference/1' ? d : undefined;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
