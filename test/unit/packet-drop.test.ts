import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DROP_REASON_COUNT, Drop, DropCounters, dropName, isMalformed } from '../../src/packet/drop.js';

test('drop: codes are distinct small integers with names', () => {
  const codes = Object.values(Drop);
  assert.equal(new Set(codes).size, codes.length);
  assert.equal(codes.length, DROP_REASON_COUNT);
  for (const [name, code] of Object.entries(Drop)) {
    assert.ok(Number.isInteger(code) && code >= 0 && code < DROP_REASON_COUNT);
    assert.equal(dropName(code), name);
  }
  assert.equal(Drop.None, 0);
  assert.equal(dropName(99), 'Unknown(99)');
});

test('drop: malformed family', () => {
  for (const d of [Drop.Malformed, Drop.Truncated, Drop.BadVersion, Drop.BadHeaderLength, Drop.BadTotalLength, Drop.BadExtHeader, Drop.BadL4]) {
    assert.equal(isMalformed(d), true, dropName(d));
  }
  for (const d of [Drop.None, Drop.NoRoute, Drop.Spoofed, Drop.BadVni, Drop.PolicyDenied, Drop.TtlExceeded]) {
    assert.equal(isMalformed(d), false, dropName(d));
  }
});

test('drop: counters count, merge, snapshot and reset', () => {
  const a = new DropCounters();
  a.count(Drop.BadVni);
  a.count(Drop.BadVni);
  a.count(Drop.Truncated, 5);
  a.count(-3); // out of range: counted as Malformed rather than lost or thrown
  a.count(Drop.None); // None is never a drop
  assert.equal(a.get(Drop.BadVni), 2);
  assert.equal(a.get(Drop.Truncated), 5);
  assert.equal(a.get(Drop.Malformed), 1);
  assert.equal(a.get(Drop.None), 0);
  assert.equal(a.total(), 8);
  const b = new DropCounters();
  b.count(Drop.NoRoute, 4);
  b.addFrom(a);
  const snap = b.snapshot();
  assert.equal(snap.NoRoute, 4);
  assert.equal(snap.BadVni, 2);
  assert.equal(snap.TtlExceeded, 0);
  assert.equal('None' in snap, false);
  assert.equal(Object.keys(snap).length, DROP_REASON_COUNT - 1);
  b.reset();
  assert.equal(b.total(), 0);
});
