import { v7 as uuidv7 } from 'uuid';
import { MAX_OWNER_TOKEN, mintTxId, OWNER_TAG, txIdOwner } from '../../coordinator/engine/ports/owned-tx-id';
import { ownerOf } from '../../coordinator/engine/ports/ownership';
import { uuidV7Time } from '../../coordinator/engine/ports/protocol';
import { buildGid, isTxId, isTxId as sdkIsTxId, parseGid, uuidV7Time as sdkUuidV7Time } from '../../participant-sdk/src/gid';

/** Transaction ids that carry their owner's fencing token (issue 10): format, round trip, uniqueness, order. */
describe('owned transaction ids', () => {
  const RFC_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('carry the token, and stay UUID v7 ids every validator accepts', () => {
    for (const token of [0, 1, 7, 255, 256, 65_535, 123_456_789, MAX_OWNER_TOKEN]) {
      const id = mintTxId(token);
      expect({ token, v7: RFC_V7.test(id), coordinator: isTxId(id), sdk: sdkIsTxId(id), owner: txIdOwner(id) }).toEqual({ token, v7: true, coordinator: true, sdk: true, owner: token });
      // A GID of it is one of ours and parses back to it.
      expect(parseGid(buildGid('twopc', id, 3))).toEqual({ prefix: 'twopc', txId: id, branchId: 3 });
    }
  });

  it('keep the time prefix: time-ordered, and read back as the time they were made', () => {
    const before = Date.now();
    const id = mintTxId(42);
    const after = Date.now();
    expect(uuidV7Time(id)).toBeGreaterThanOrEqual(before);
    expect(uuidV7Time(id)).toBeLessThanOrEqual(after);
    expect(sdkUuidV7Time(id)).toBe(uuidV7Time(id));
    const ids = Array.from({ length: 50_000 }, (_, i) => mintTxId(i % 3 === 0 ? 42 : 43));
    const ofOne = ids.filter((x) => txIdOwner(x) === 42);
    expect(ofOne.every((x, i) => i === 0 || ofOne[i - 1] < x)).toBe(true);
  });

  it('are unique under one token without random bits (time and counter increase), and differ between tokens', () => {
    const ids = Array.from({ length: 100_000 }, () => mintTxId(9));
    expect(new Set(ids).size).toBe(ids.length);
    // Two processes with the same time and counter still differ: their tokens are never the same.
    const bytes = (id: string) => id.replace(/-/g, '');
    const a = mintTxId(1);
    const b = `${a.slice(0, -8)}${(2).toString(16).padStart(8, '0')}`;
    expect(bytes(a).slice(0, 24)).toBe(bytes(b).slice(0, 24));
    expect([txIdOwner(a), txIdOwner(b)]).toEqual([1, 2]);
  });

  it('without a token, or with one past 32 bits, are plain UUID v7 ids that name no owner', () => {
    for (const token of [undefined, MAX_OWNER_TOKEN + 1, Number.MAX_SAFE_INTEGER, -1, 1.5]) {
      const id = mintTxId(token);
      expect({ token, v7: RFC_V7.test(id) }).toEqual({ token, v7: true });
      // Random bits may look like the tag once in 1,024; mint until they do not, to check the fallback itself.
      let plain = id;
      while (txIdOwner(plain) !== undefined) plain = mintTxId(token);
      expect(txIdOwner(plain)).toBeUndefined();
    }
  });

  it('tell an id made before (random bits) from one that carries an owner by the tag', () => {
    const random = new Uint8Array(16);
    const made = (tag: number) => {
      random[10] = tag >>> 8;
      random[11] = tag & 0xff;
      random[12] = 0;
      random[13] = 0;
      random[14] = 0;
      random[15] = 5;
      return uuidv7({ random, msecs: 1_700_000_000_000, seq: 0 });
    };
    expect(txIdOwner(made(OWNER_TAG))).toBe(5);
    expect(txIdOwner(made(OWNER_TAG ^ 1))).toBeUndefined();
    // Not v7, or not the RFC variant, or not lower case: no owner.
    const id = mintTxId(5);
    expect(txIdOwner(`${id.slice(0, 14)}4${id.slice(15)}`)).toBeUndefined();
    expect(txIdOwner(`${id.slice(0, 19)}c${id.slice(20)}`)).toBeUndefined();
    expect(txIdOwner(id.toUpperCase())).toBeUndefined();
    expect(txIdOwner('not-an-id')).toBeUndefined();
  });

  it("ownerOf: the begin record's owner, else the one the id carries", () => {
    const id = mintTxId(7);
    expect(ownerOf({ txId: id, owner: 7 })).toBe(7);
    expect(ownerOf({ txId: id })).toBe(7);
    // An id made before ids carried owners, whose random bits look like one: the begin record wins.
    expect(ownerOf({ txId: id, owner: 3 })).toBe(3);
    let plain = uuidv7();
    while (txIdOwner(plain) !== undefined) plain = uuidv7();
    expect(ownerOf({ txId: plain })).toBeUndefined();
  });
});
