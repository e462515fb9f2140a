import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector';

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    session.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T)));
  });
}

/**
 * V8 CPU profiles of the measured runs only (not cluster start-up, seeding or
 * warm-up, which would drown them), one `.cpuprofile` file per mode and
 * round; open them in Chrome DevTools or speedscope.
 */
export class CpuProfiler {
  private readonly session = new Session();

  /** `intervalUs`: the sampling interval (V8's default, 1000, when unset). */
  constructor(
    private readonly dir: string,
    private readonly intervalUs?: number,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.session.connect();
  }

  async start(): Promise<void> {
    await post(this.session, 'Profiler.enable');
    if (this.intervalUs !== undefined) await post(this.session, 'Profiler.setSamplingInterval', { interval: this.intervalUs });
    await post(this.session, 'Profiler.start');
  }

  async stop(name: string): Promise<string> {
    const { profile } = await post<{ profile: unknown }>(this.session, 'Profiler.stop');
    const file = path.join(this.dir, `${name}.cpuprofile`);
    fs.writeFileSync(file, JSON.stringify(profile));
    return file;
  }

  close(): void {
    this.session.disconnect();
  }
}
