// Row selection with shift-click ranges, as in a mail client: a plain click toggles one row and
// becomes the anchor; a shift-click sets every row between the anchor and it to the anchor's state.

export interface Selection {
  selected: ReadonlySet<number>;
  anchor: number | null;
}

export const emptySelection: Selection = { selected: new Set(), anchor: null };

/** `ids` in the order shown; `id` the row clicked. */
export function toggle(state: Selection, ids: readonly number[], id: number, shift: boolean): Selection {
  const selected = new Set(state.selected);
  if (shift && state.anchor !== null && ids.includes(state.anchor)) {
    const [from, to] = [ids.indexOf(state.anchor), ids.indexOf(id)].sort((a, b) => a - b);
    const on = selected.has(state.anchor);
    for (const rowId of ids.slice(from, to + 1)) {
      if (on) selected.add(rowId);
      else selected.delete(rowId);
    }
    return { selected, anchor: state.anchor };
  }
  if (selected.has(id)) selected.delete(id);
  else selected.add(id);
  return { selected, anchor: id };
}

/** Keep only rows still shown (after a reload of the page). */
export function retain(state: Selection, ids: readonly number[]): Selection {
  const shown = new Set(ids);
  return {
    selected: new Set([...state.selected].filter((id) => shown.has(id))),
    anchor: state.anchor !== null && shown.has(state.anchor) ? state.anchor : null,
  };
}
