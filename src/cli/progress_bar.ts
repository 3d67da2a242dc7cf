/**
 * The CLI's progress bars, drawn on stderr only when it is a terminal (a pipe or a log file gets nothing).
 * Library code reports progress through callbacks; this is where the `headlens` command turns them into bars.
 */
import cliProgress from 'cli-progress';
import type { DownloadProgress } from '../loading/hub.js';

/** A bar counting items (`scan [████──] 3/8 items`), or undefined when stderr is not a terminal. */
export function countBar(label: string, total: number, unit: string): { update(done: number): void; stop(): void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: `${label} [{bar}] {value}/{total} ${unit}`, hideCursor: true });
  bar.start(total, 0);
  return bar;
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
