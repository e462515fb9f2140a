import { DeadlineQueue, type Deadlined } from '../../coordinator/engine/deadline-queue';

/**
 * The one timer behind every running transaction's timeout (issue 16: a
 * setTimeout per transaction cost ~300 bytes each). The clock is the test's,
 * so "not before its deadline" is checked without timing anything.
 */

interface Item extends Deadlined {
  name: string;
}
const item = (name: string): Item => ({ name, deadlineSlot: -1 });

async function until(what: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(what()).toBe(true);
}

describe('DeadlineQueue', () => {
  let now: number;
  let handed: string[];
  let queue: DeadlineQueue<Item>;
  beforeEach(() => {
    now = 0;
    handed = [];
    queue = new DeadlineQueue<Item>((i) => handed.push(i.name), () => now);
  });
  afterEach(() => queue.clear());

  it('hands items out in deadline order, never before their deadline', async () => {
    const items = [item('c'), item('a'), item('b'), item('d')];
    queue.add(items[0], 30);
    queue.add(items[1], 10);
    queue.add(items[2], 20);
    queue.add(items[3], 40);
    // The timer fires (after 10 ms of real time), but the clock says nothing is due yet: it arms again.
    await new Promise((r) => setTimeout(r, 30));
    expect(handed).toEqual([]);
    now = 20;
    await until(() => handed.length === 2);
    expect(handed).toEqual(['a', 'b']);
    expect(queue.size).toBe(2);
    now = 100;
    await until(() => handed.length === 4);
    expect(handed).toEqual(['a', 'b', 'c', 'd']);
    expect(items.map((i) => i.deadlineSlot)).toEqual([-1, -1, -1, -1]);
  });

  it('never hands out a removed item, and keeps the others in order', async () => {
    const items = Array.from({ length: 50 }, (_, i) => item(`t${i}`));
    // Deadlines out of order: 0, 37, 74, ... mod 50.
    for (let i = 0; i < items.length; i++) queue.add(items[i], (i * 37) % 50);
    for (let i = 0; i < items.length; i += 3) queue.remove(items[i]);
    queue.remove(items[0]); // twice: no effect
    expect(items[3].deadlineSlot).toBe(-1);
    now = 1_000;
    await until(() => queue.size === 0);
    const expected = items
      .map((it, i) => ({ it, i, at: (i * 37) % 50 }))
      .filter(({ i }) => i % 3 !== 0)
      .sort((a, b) => a.at - b.at)
      .map(({ it }) => it.name);
    expect(handed).toEqual(expected);
  });

  it('hands out many due at once over several turns, all of them', async () => {
    const items = Array.from({ length: 1_234 }, (_, i) => item(`t${i}`));
    for (const it of items) queue.add(it, 5);
    now = 5;
    await until(() => handed.length === items.length);
    expect(new Set(handed).size).toBe(items.length);
    expect(queue.size).toBe(0);
  });

  it('an item added again gets its new deadline; clear stops everything', async () => {
    const a = item('a');
    const b = item('b');
    queue.add(a, 10);
    queue.add(b, 20);
    queue.add(a, 30);
    expect(queue.size).toBe(2);
    now = 25;
    await until(() => handed.length === 1);
    expect(handed).toEqual(['b']);
    queue.clear();
    expect(a.deadlineSlot).toBe(-1);
    now = 100;
    await new Promise((r) => setTimeout(r, 40));
    expect(handed).toEqual(['b']);
  });
  it('hands out items with equal deadlines, and re-arms for the next after the head is removed', async () => {
    const items = ['a', 'b', 'c'].map(item);
    for (const it of items) queue.add(it, 10);
    const late = item('late');
    queue.add(late, 20);
    queue.remove(items[0]);
    now = 10;
    await until(() => handed.length === 2);
    expect(handed.sort()).toEqual(['b', 'c']);
    now = 20;
    await until(() => handed.length === 3);
    expect(handed[2]).toBe('late');
  });

  it('arms no timer longer than setTimeout takes (a longer one would fire after 1 ms, again and again)', () => {
    const spy = jest.spyOn(global, 'setTimeout');
    try {
      queue.add(item('a month'), 30 * 24 * 3_600_000);
      const delays = spy.mock.calls.map((c) => c[1] as number);
      expect(delays.length).toBeGreaterThan(0);
      expect(delays.every((d) => d > 1 && d <= 0x7fffffff)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('DeadlineQueue on its default clock', () => {
  afterEach(() => jest.useRealTimers());

  it('follows fake timers (an application testing its timeouts with jest.useFakeTimers)', () => {
    jest.useFakeTimers();
    const handed: string[] = [];
    const queue = new DeadlineQueue<Item>((i) => handed.push(i.name));
    queue.add(item('a'), 1_000);
    jest.advanceTimersByTime(999);
    expect(handed).toEqual([]);
    jest.advanceTimersByTime(2);
    expect(handed).toEqual(['a']);
    queue.clear();
  });
});
