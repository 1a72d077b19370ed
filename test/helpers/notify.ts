// A socket like systemd's NOTIFY_SOCKET (a python listener on a unix datagram socket),
// collecting the daemon's sd_notify messages in arrival order.
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { root } from './agent.js';
import { waitFor } from './wait.js';

export async function notifySocket(t: Test, dir: string): Promise<{ path: string; messages: string[] }> {
  const sock = path.join(dir, 'notify.sock');
  const listener = spawn('python3', [path.join(root, 'test/fixtures/notify-listener.py'), sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => listener.kill('SIGKILL'));
  const messages: string[] = [];
  let listening = false;
  listener.stdout!.setEncoding('utf8').on('data', (d: string) => {
    for (const line of d.split('\n').filter(Boolean)) {
      const m = JSON.parse(line) as { msg?: string; listening?: string };
      if (m.listening) listening = true;
      if (m.msg) messages.push(m.msg);
    }
  });
  await waitFor(() => listening, { what: 'notify socket bound' });
  return { path: sock, messages };
}
