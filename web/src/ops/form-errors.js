// Field errors of a 422 shown next to their fields: each field of a form names the API field it
// edits (`data-field="recipients.addresses[0].to"`); an error for `kinds[0]` or
// `schedule.days` lands on the closest field that names it or a prefix of it.
import { esc } from '../common/format.js';

/** Removes the errors `show` added. */
export function clearErrors(form) {
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
  form.querySelectorAll('[aria-invalid]').forEach((e) => {
    e.removeAttribute('aria-invalid');
    e.removeAttribute('aria-describedby');
  });
}

/** The element for an API field: exact, else the longest named prefix (`kinds[0]` → `kinds`). */
function target(form, field) {
  let name = field;
  while (name) {
    const el = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (el) return el;
    const cut = Math.max(name.lastIndexOf('.'), name.lastIndexOf('['));
    name = cut > 0 ? name.slice(0, cut) : '';
  }
  return null;
}

/**
 * Shows each `{field, message}` after its field (or at the top of the form when no field
 * matches); focuses the first. Returns whether any error was shown.
 */
export function showErrors(form, errors, fallback) {
  clearErrors(form);
  let first = null;
  errors.forEach((e, i) => {
    const el = target(form, e.field) || fallback;
    const id = `${form.id}-err-${i}`;
    const p = document.createElement('p');
    p.className = 'field-error';
    p.id = id;
    p.dataset.errorFor = e.field;
    p.innerHTML = `${esc(e.message)} <span class="muted">(${esc(e.field)})</span>`;
    el.insertAdjacentElement('afterend', p);
    el.setAttribute('aria-invalid', 'true');
    el.setAttribute('aria-describedby', id);
    first ??= el;
  });
  first?.focus?.();
  return errors.length > 0;
}
