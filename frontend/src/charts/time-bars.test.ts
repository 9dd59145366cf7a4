import { describe, expect, it } from "vitest";
import { period } from "./time-bars";

describe("period", () => {
  const day = 86400;
  const monday = Date.UTC(2026, 10, 30) / 1000;
  it("names an hour, a day and a week as UTC dates", () => {
    expect(period({ start: monday + 3600, end: monday + 7200 })).toBe("2026-11-30 01:00 UTC");
    expect(period({ start: monday, end: monday + day })).toBe("2026-11-30");
    expect(period({ start: monday, end: monday + 7 * day })).toBe("2026-11-30 – 2026-12-06");
  });

  it("names a bucket cut short by the range by its own length", () => {
    expect(period({ start: monday, end: monday + day - 0.001 })).toBe("2026-11-30");
  });
});
