// Child processes a test started are killed when the test process exits, through one
// 'exit' listener for all of them.
const pending = new Set<() => void>();
let installed = false;

export function killOnExit(kill: () => void): void {
  pending.add(kill);
  if (!installed) {
    installed = true;
    process.once('exit', () => {
      for (const k of pending) k();
    });
  }
}
