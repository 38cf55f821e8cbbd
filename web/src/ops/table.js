// Data tables: a header row of sort buttons (aria-sort tells screen readers the order), rows
// rendered from column definitions, and the empty text when there are none. Sorting reorders
// the rows already loaded; the table sits in a container that scrolls sideways on its own.
import { esc } from '../common/format.js';

/**
 * Renders `rows` into `host`.
 * columns: `{key, label, value(row) → raw (sort key), text(row) → display text, html(row) →
 * trusted markup (already escaped), numeric}`.
 */
export function renderTable(host, { caption, columns, rows, empty, rowAttrs, sort: initial }) {
  let sort = initial || null;
  const draw = () => {
    const sorted = sort ? sortRows(rows, columns.find((c) => c.key === sort.key), sort.dir) : rows;
    host.innerHTML = rows.length
      ? `<div class="scroll" tabindex="0" role="region" aria-label="${esc(caption)}"><table>
          <caption class="visually-hidden">${esc(caption)}</caption>
          <thead><tr>${columns.map((c) => headerCell(c, sort)).join('')}</tr></thead>
          <tbody>${sorted.map((r) => row(r, columns, rowAttrs)).join('')}</tbody>
        </table></div>`
      : `<p class="empty">${esc(empty)}</p>`;
    host.querySelectorAll('th button[data-sort]').forEach((b) =>
      b.addEventListener('click', () => {
        const key = b.dataset.sort;
        sort = { key, dir: sort?.key === key && sort.dir === 'asc' ? 'desc' : 'asc' };
        draw();
        host.querySelector(`th button[data-sort="${key}"]`).focus();
      }),
    );
  };
  draw();
}

function headerCell(c, sort) {
  const dir = sort?.key === c.key ? sort.dir : null;
  const ariaSort = dir ? ` aria-sort="${dir === 'asc' ? 'ascending' : 'descending'}"` : '';
  const mark = dir ? (dir === 'asc' ? ' ↑' : ' ↓') : '';
  return `<th scope="col"${ariaSort} class="${c.numeric ? 'num' : ''}"><button type="button" class="sort" data-sort="${esc(c.key)}">${esc(c.label)}<span aria-hidden="true">${mark}</span></button></th>`;
}

function row(r, columns, rowAttrs) {
  const cells = columns.map((c, i) => {
    const content = c.html ? c.html(r) : esc(c.text ? c.text(r) : c.value(r) ?? '—');
    const tag = i === 0 ? 'th scope="row"' : 'td';
    return `<${tag} class="${c.numeric ? 'num' : ''}" data-col="${esc(c.key)}">${content}</${tag.split(' ')[0]}>`;
  });
  return `<tr ${rowAttrs ? rowAttrs(r) : ''}>${cells.join('')}</tr>`;
}

function sortRows(rows, column, dir) {
  const sign = dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = column.value(a);
    const y = column.value(b);
    // missing values last in either direction
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sign;
  });
}

/** Shows a loading note in `host` until the next render replaces it. */
export function loading(host, what = 'Loading…') {
  host.innerHTML = `<p class="loading" aria-busy="true">${esc(what)}</p>`;
}
