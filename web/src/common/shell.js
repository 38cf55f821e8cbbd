// The frame both apps share: a header with the app switch, the notification bell, the
// signed-in user and logout.
// `startApp` checks the session first, so a signed-out visitor goes straight to the login page.
import { api, ApiError } from './api.js';
import { esc } from './format.js';
import { Bell } from './bell.js';

const apps = [
  { path: '/now', name: 'FleetNow', title: 'Live map' },
  { path: '/ops', name: 'FleetOps', title: 'Operations' },
];

/** Renders the header into `#app-header`; resolves to the user (`/auth/me`). */
export async function startApp(current) {
  let me;
  try {
    me = await api('/auth/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return new Promise(() => {});
    throw e;
  }
  const header = document.getElementById('app-header');
  header.innerHTML = `
    <a class="skip" href="#main">Skip to content</a>
    <span class="brand">fleetd</span>
    <nav aria-label="Apps">
      ${apps
        .map(
          (a) =>
            `<a href="${a.path}" ${a.name === current ? 'aria-current="page"' : ''} title="${esc(a.title)}">${a.name}</a>`,
        )
        .join('')}
    </nav>
    <div class="bell" id="bell"></div>
    <span class="who" data-testid="who">${esc(me.username)} <span class="role">${esc(me.role)}</span></span>
    <button type="button" class="link" id="logout">Log out</button>`;
  header.querySelector('#logout').addEventListener('click', async () => {
    try {
      await api('/auth/logout', { method: 'POST' });
    } finally {
      location.assign('/login');
    }
  });
  document.body.dataset.role = me.role;
  bell = new Bell(header.querySelector('#bell'));
  return me;
}

let bell = null;

/** The header's bell, for the app's live stream to feed (`notification`, `reset`). */
export function headerBell() {
  return bell;
}

/** Operators and admins may change things (acknowledge alarms); viewers only look. */
export function canOperate(me) {
  return me.role === 'operator' || me.role === 'admin';
}

/** Shows an error where the user sees it, instead of failing silently. */
export function showError(message) {
  let box = document.getElementById('app-error');
  if (!box) {
    box = document.createElement('div');
    box.id = 'app-error';
    box.setAttribute('role', 'alert');
    document.body.prepend(box);
  }
  box.textContent = message;
  box.hidden = !message;
}
