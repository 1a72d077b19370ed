#!/usr/bin/env node
process.env.EDGE_AGENT_CLI = '1';
await import('../dist/agent/cli.js');
