// The login page: posts the credentials, then goes back to where the user came from.
import '../common/base.css';
import './login.css';
import { api } from '../common/api.js';

const form = document.getElementById('login');
const error = document.getElementById('login-error');

/** Only same-site paths are followed, so a crafted link cannot send a user elsewhere. */
function nextPath() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
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
    location.assign(nextPath());
  } catch (e) {
    if (e.status === 401) fail('Wrong username or password.');
    else if (e.status === 429) fail('Too many failed attempts. Wait a few minutes and try again.');
    else fail(`Sign-in failed: ${e.message}`);
    form.password.select();
  } finally {
    button.disabled = false;
  }
});
