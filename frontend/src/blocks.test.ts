import { describe, expect, it } from "vitest";
import { BlockError, fromYaml, toYaml } from "./blocks";

describe("stories and rules as YAML", () => {
  it("round-trips a story without its id", async () => {
    const story = { id: 4, story: "happy path", steps: [{ intent: "greet" }, { action: "utter_greet" }] };
    const text = await toYaml(story);
    expect(text).not.toContain("id:");
    expect(await fromYaml(text, "story")).toEqual({ story: "happy path", steps: story.steps });
  });

  it("says which line is broken", async () => {
    await expect(fromYaml("- story: x\n  steps:\n  - intent: [greet\n", "story")).rejects.toThrow(/^line \d+:/);
  });

  it("refuses a block of the other kind, two blocks, or no steps", async () => {
    await expect(fromYaml("- rule: r\n  steps: []\n", "story")).rejects.toThrow(BlockError);
    await expect(fromYaml("- story: a\n  steps: []\n- story: b\n  steps: []\n", "story")).rejects.toThrow(/exactly one/);
    await expect(fromYaml("story: a\n", "story")).rejects.toThrow(/steps/);
  });
});
