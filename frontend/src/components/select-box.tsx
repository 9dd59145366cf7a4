/** A row's checkbox in a list with bulk actions; `onToggle` learns whether shift was held (a range). */
export function SelectBox({ label, checked, onToggle }: { label: string; checked: boolean; onToggle: (shift: boolean) => void }) {
  return <input type="checkbox" aria-label={label} checked={checked} onClick={(e) => onToggle(e.shiftKey)} />;
}
