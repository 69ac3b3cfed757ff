// Shared helpers: every state-changing request carries the page's CSRF token.
const CSRF = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(url, body, method = "POST", headers = {}) {
  const isRaw = body instanceof Blob || body instanceof ArrayBuffer;
  const response = await fetch(url, {
    method,
    headers: {"X-CSRF-Token": CSRF(), ...(isRaw ? {} : {"Content-Type": "application/json"}), ...headers},
    body: body === undefined ? undefined : (isRaw ? body : JSON.stringify(body)),
  });
  let payload = null;
  try { payload = await response.json(); } catch (e) { payload = {error: await response.text()}; }
  if (!response.ok) { const err = new Error(payload.error || response.statusText); err.payload = payload; throw err; }
  return payload;
}

function text(el, value) { el.textContent = value; }

// Tables with class "sortable-table": click a header to sort, type in [data-filter-for] to filter.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable-table").forEach(table => {
    table.querySelectorAll("th.sortable").forEach((th, _) => th.addEventListener("click", () => {
      const index = [...th.parentNode.children].indexOf(th);
      const rows = [...table.tBodies[0].rows];
      const up = th.dataset.dir !== "asc";
      th.dataset.dir = up ? "asc" : "desc";
      const key = row => { const cell = row.cells[index]; return cell.dataset.sort ?? cell.textContent.trim(); };
      rows.sort((a, b) => {
        const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        const order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return up ? order : -order;
      });
      rows.forEach(row => table.tBodies[0].appendChild(row));
    }));
  });
  document.querySelectorAll("[data-filter-for]").forEach(input => input.addEventListener("input", () => {
    const needle = input.value.toLowerCase();
    document.querySelectorAll(`#${input.dataset.filterFor} tbody tr`).forEach(row => {
      row.hidden = needle && !row.textContent.toLowerCase().includes(needle);
    });
  }));
});
