import { describe, expect, it } from "vitest";
import { emptySelection, retain, toggle } from "./selection";

const ids = [10, 11, 12, 13, 14];

describe("row selection", () => {
  it("toggles one row and selects a range with shift", () => {
    let s = toggle(emptySelection, ids, 11, false);
    s = toggle(s, ids, 14, true);
    expect([...s.selected].sort()).toEqual([11, 12, 13, 14]);
    s = toggle(s, ids, 12, false); // unselect 12, now the anchor
    s = toggle(s, ids, 10, true); // the anchor is off: the range goes off
    expect([...s.selected].sort()).toEqual([13, 14]);
  });

  it("treats a shift-click without an anchor as a plain click", () => {
    expect([...toggle(emptySelection, ids, 12, true).selected]).toEqual([12]);
  });

  it("forgets rows no longer shown", () => {
    const s = retain(toggle(toggle(emptySelection, ids, 11, false), ids, 13, true), [12, 13]);
    expect([...s.selected].sort()).toEqual([12, 13]);
    expect(s.anchor).toBeNull();
  });
});
