/**
 * Runs a GPU-machine program's async main (esbuild's cjs bundles have no top-level await) and exits: 0 when it
 * resolves, 1 with the error printed when it throws. The exit also ends Dawn's device, which would keep Node alive.
 */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
