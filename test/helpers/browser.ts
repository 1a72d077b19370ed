// Debian's chromium driven by playwright-core; never a browser download. launch() gives each
// browser a fresh temporary profile (playwright refuses --user-data-dir here).
import { chromium, type Browser } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { root } from './agent.js';

export const artifactsDir = path.join(root, 'var/test-artifacts');

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(artifactsDir, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}
