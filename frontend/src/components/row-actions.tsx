/** A list row's "Edit" and "Delete" buttons, named after the thing for screen readers. */
export function EditDelete({ what, onEdit, onDelete }: { what: string; onEdit: () => void; onDelete: () => void }) {
  return (
    <>
      <button type="button" aria-label={`Edit ${what}`} onClick={onEdit}>
        Edit
      </button>{" "}
      <button type="button" class="danger" aria-label={`Delete ${what}`} onClick={onDelete}>
        Delete
      </button>
    </>
  );
}

/** An edit form's "Save" and "Cancel". */
export function SaveCancel({ save = "Save", onCancel }: { save?: string; onCancel: () => void }) {
  return (
    <>
      <button type="submit">{save}</button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
    </>
  );
}
