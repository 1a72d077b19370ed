// Progress for long steps (calibration, evaluation): a single updating line on a terminal,
// nothing at all when stderr is a pipe or a file, so scripts and CI logs stay clean.
export class Progress {
  private readonly tty: boolean;
  private last = 0;
  private done = 0;

  constructor(private readonly label: string, private readonly total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY) && !process.env.EDGE_MODEL_QUIET;
    this.stream = stream;
  }
  private readonly stream: NodeJS.WriteStream;

  tick(n = 1): void {
    this.done += n;
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100 && this.done < this.total) return;
    this.last = now;
    const pct = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    this.stream.write(`\r${this.label}: ${this.done}/${this.total} (${pct}%)`);
  }

  end(): void {
    if (this.tty) this.stream.write('\r\x1b[K');
  }
}
