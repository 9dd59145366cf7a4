import { cleanup, fireEvent, render, screen } from "@testing-library/preact";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EntityMarker } from "./entity-marker";
import type { Entity } from "../training/entities";

afterEach(cleanup);

function select(field: HTMLInputElement, start: number, end: number) {
  field.setSelectionRange(start, end);
  fireEvent.select(field);
}

describe("the entity marker", () => {
  it("marks the selected words (spaces at the edges left out) with entity, role and group", () => {
    const onChange = vi.fn();
    const existing: Entity[] = [{ start: 0, end: 4, entity: "verb" }];
    render(<EntityMarker text="book a table for two" entities={existing} names={["count"]} onChange={onChange} />);
    const field = screen.getByLabelText("Select the words of an entity") as HTMLInputElement;
    const mark = screen.getByRole("button", { name: "Mark entity" }) as HTMLButtonElement;
    expect(mark.disabled).toBe(true);
    select(field, 16, 20);
    expect(screen.getByText("Selected “two” (characters 17–20)")).toBeTruthy();
    fireEvent.input(screen.getByLabelText("Entity"), { target: { value: "count" } });
    fireEvent.input(screen.getByLabelText("Role"), { target: { value: "guests" } });
    fireEvent.input(screen.getByLabelText("Group"), { target: { value: "1" } });
    fireEvent.click(mark);
    expect(onChange).toHaveBeenCalledWith([existing[0], { start: 17, end: 20, entity: "count", role: "guests", group: "1" }]);
  });

  it("marks nothing for a selection of spaces, and removes an entity on request", () => {
    const onChange = vi.fn();
    const entities: Entity[] = [{ start: 7, end: 12, entity: "thing" }];
    render(<EntityMarker text="book a table" entities={entities} names={[]} onChange={onChange} />);
    select(screen.getByLabelText("Select the words of an entity") as HTMLInputElement, 4, 5);
    fireEvent.input(screen.getByLabelText("Entity"), { target: { value: "x" } });
    expect((screen.getByRole("button", { name: "Mark entity" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: /^Remove/ }));
    expect(onChange).toHaveBeenCalledWith([]);
  });
});
