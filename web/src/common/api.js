// The JSON API as the web apps use it: same-origin requests with the session cookie; a 401
// sends the user to the login page and back here afterwards; errors carry the problem's text.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Where the login page sends the user back to. */
export function loginUrl() {
  const next = `${location.pathname}${location.search}`;
  return `/login?next=${encodeURIComponent(next)}`;
}

/** Calls `/api/v1${path}`; resolves to the parsed JSON body (null for 204). */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    signal,
  });
  if (res.status === 401 && !path.startsWith('/auth/login')) {
    location.assign(loginUrl());
    throw new ApiError(401, { title: 'Signed out' });
  }
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : { detail: data });
  return data;
}

/** Query string from an object, skipping empty values; arrays repeat the key. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Settings the server writes into the page (tile source, version). */
export function pageConfig() {
  const el = document.getElementById('fleetd-config');
  try {
    return el ? JSON.parse(el.textContent) : {};
  } catch {
    return {};
  }
}
