#!/usr/bin/env node
process.env.EDGE_FLEET_CLI = '1';
await import('../dist/controller/cli.js');
