#!/usr/bin/env node
process.env.EDGE_MODEL_CLI = '1';
await import('../dist/tools/edge-model/cli.js');
