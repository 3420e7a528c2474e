/**
 * How many worker processes a config asks for (`workers`, `--workers`): its own module, so that deciding it does not
 * load the cluster code (and prom-client) for the single-process case.
 */

/** How many workers `workers` asks for ("auto": one per core the process may use). */
export function workerCount (workers: number | 'auto', cores: number): number {
  return workers === 'auto' ? Math.max(1, cores) : workers
}
