// The login page: posts the credentials, then goes back to where the user came from.
import '../common/base.css';
import './login.css';
import { api, pageConfig } from '../common/api.js';

const form = document.getElementById('login');
const error = document.getElementById('login-error');

/**
 * Where to go after signing in: `next` (as the server resolved it into the page, else from the
 * query) resolved against this origin, and followed only when it stays on it, so a crafted link
 * (`/login?next=/\evil.example`, which browsers read as `//evil.example`) cannot send a user
 * elsewhere. The absolute URL is assigned, so nothing is re-interpreted.
 */
function nextUrl() {
  const next = pageConfig().next ?? new URLSearchParams(location.search).get('next') ?? '/';
  try {
    const url = new URL(next, location.origin);
    if (url.origin === location.origin && !url.pathname.startsWith('//')) return url.href;
  } catch {
    // not a URL at all
  }
  return new URL('/', location.origin).href;
}

function fail(message) {
  error.textContent = message;
  error.hidden = false;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    fail('Enter your username and password.');
    return;
  }
  const button = form.querySelector('button');
  button.disabled = true;
  error.hidden = true;
  try {
    await api('/auth/login', { method: 'POST', body: { username, password } });
    location.assign(nextUrl());
  } catch (e) {
    if (e.status === 401 || e.status === 422) fail('Wrong username or password.');
    else if (e.status === 429) fail('Too many failed attempts. Wait a few minutes and try again.');
    else fail(`Sign-in failed: ${e.message}`);
    form.password.select();
  } finally {
    button.disabled = false;
  }
});
