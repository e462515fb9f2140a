// Live pages: refresh every few seconds while shown; navigation stops it.

/** Runs `tick` now and every `ms` until the returned stop is called; a tick never overlaps the previous one. */
export function poll(tick, ms) {
  let stopped = false;
  let timer;
  const run = async () => {
    try {
      await tick();
    } finally {
      if (!stopped) timer = setTimeout(run, ms);
    }
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
