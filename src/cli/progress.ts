/**
 * Progress as the CLI draws it: a bar on a terminal, plain lines otherwise (a log or a pipe gets a line per
 * tenth of the work, so a long run is never silent). Library functions report `(done, total)` through
 * callbacks and never touch the terminal themselves.
 */
import cliProgress from 'cli-progress';

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
