import { describe, expect, it } from "vitest";
import { apiQuery, chips, datePresets, pageOf, PAGE_SIZE, values, withFilter, withoutFilter } from "./filters";

const q = (text: string) => new URLSearchParams(text);

describe("conversation filters in the URL", () => {
  it("adds values to a list filter once, and replaces a single-valued one", () => {
    let query = withFilter(q("page=3"), "intent", "greet");
    query = withFilter(query, "intent", "goodbye");
    query = withFilter(query, "intent", "greet");
    expect(values(query, "intent")).toEqual(["greet", "goodbye"]);
    expect(query.has("page")).toBe(false);
    query = withFilter(withFilter(query, "text", "sad"), "text", "happy");
    expect(query.getAll("text")).toEqual(["happy"]);
  });

  it("removes one chip's value and drops an emptied parameter", () => {
    const query = q("intent=greet,goodbye&review_status=unread&page=2");
    const fewer = withoutFilter(query, "intent", "greet");
    expect(fewer.toString()).toBe("review_status=unread&intent=goodbye");
    expect(withoutFilter(fewer, "intent", "goodbye").has("intent")).toBe(false);
  });

  it("shows one chip per value, labelled for a person", () => {
    const labels = chips(q("intent=greet,mood_great&is_flagged=true&review_status=saved_for_later")).map((c) => c.label);
    expect(labels).toEqual(["Intent: greet", "Intent: mood great", "Review status: saved for later", "Flagged: yes"]);
  });

  it("turns the page into limit and offset and keeps only the API's parameters", () => {
    const api = q(apiQuery(q("intent=greet&page=3&unknown=1")));
    expect(api.get("intent")).toBe("greet");
    expect(api.get("limit")).toBe(String(PAGE_SIZE));
    expect(api.get("offset")).toBe(String(2 * PAGE_SIZE));
    expect(api.has("unknown")).toBe(false);
    expect(api.has("page")).toBe(false);
  });

  it("reads a bad page number as the first page", () => {
    for (const page of ["0", "-2", "abc", "1.5"]) expect(pageOf(q(`page=${page}`))).toBe(1);
    expect(pageOf(q("page=4"))).toBe(4);
  });

  it("starts the date presets at local midnight", () => {
    const now = new Date(2026, 11, 2, 15, 30);
    const [today, week] = datePresets(now);
    expect(new Date(today[1] * 1000)).toEqual(new Date(2026, 11, 2));
    expect(new Date(week[1] * 1000)).toEqual(new Date(2026, 10, 26));
  });
});
