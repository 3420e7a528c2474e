/**
 * Callbacks run at an exchange's end (Exchange and UpgradeExchange `onFinished`): one function that runs the ones
 * registered before it, then itself. No array for the common case of one callback or none.
 */

/** `prior` then `fn`, or `fn` alone. */
export function chain (prior: (() => void) | null, fn: () => void): () => void {
  return prior === null ? fn : () => { prior(); fn() }
}
