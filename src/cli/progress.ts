/**
 * Progress as the CLI draws it: a bar on a terminal, plain lines otherwise (a log or a pipe gets a line per
 * tenth of the work, so a long run is never silent). Library functions report `(done, total)` through
 * callbacks and never touch the terminal themselves.
 */
import cliProgress from 'cli-progress';
import type { DownloadProgress } from '../loading/hub.js';

/** An `onProgress(done, total)` callback that draws on stderr; the bar stops itself when done reaches total. */
export function progressBar(label: string, unit: string): (done: number, total: number) => void {
  let bar: cliProgress.SingleBar | undefined;
  let lastTenth = -1;
  return (done, total) => {
    if (process.stderr.isTTY) {
      if (!bar) {
        bar = new cliProgress.SingleBar({ stream: process.stderr, format: `${label} {bar} {value}/{total} ${unit}` }, cliProgress.Presets.shades_classic);
        bar.start(total, 0);
      }
      bar.setTotal(total);
      bar.update(done);
      if (done >= total) (bar.stop(), (bar = undefined));
      return;
    }
    const tenth = Math.floor((10 * done) / Math.max(1, total));
    if (tenth !== lastTenth || done >= total) {
      lastTenth = tenth;
      process.stderr.write(`${label}: ${done}/${total} ${unit}\n`);
    }
    if (done >= total) lastTenth = -1;
  };
}

/**
 * loadPretrained's `onProgress` for hub downloads: one byte bar per file. `stop()` ends the last one.
 * Undefined when stderr is not a terminal.
 */
export function downloadBars(): { onProgress(p: DownloadProgress): void; stop(): void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  let file: string | undefined;
  let bar: cliProgress.SingleBar | undefined;
  return {
    onProgress(p) {
      if (p.file !== file) {
        bar?.stop();
        file = p.file;
        const known = p.total !== undefined && p.total > 0;
        bar = new cliProgress.SingleBar({
          stream: process.stderr,
          format: known ? `${p.file} [{bar}] {percentage}% {value}/{total} bytes` : `${p.file} {value} bytes`,
          hideCursor: true,
        });
        bar.start(known ? p.total! : 0, 0);
      }
      bar!.update(p.bytes);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
