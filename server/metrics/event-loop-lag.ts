/**
 * The event loop's lag, sampled for the metrics: a timer due every SAMPLE_MS reports how late it
 * ran — what any request handled at that moment waited on top of its own work.
 *
 * Pattern: a sampler on a timer (unref'd: it never keeps a process alive).
 * Must never: do work in the sample beyond reading the clock.
 */

const SAMPLE_MS = 20;

export function sampleEventLoopLag(observe: (seconds: number) => void): { stop(): void } {
  let due = performance.now() + SAMPLE_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    observe(Math.max(0, now - due) / 1_000);
    due = now + SAMPLE_MS;
  }, SAMPLE_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
