import '../common/base.css';
import './now.css';
import { startApp } from '../common/shell.js';

const me = await startApp('FleetNow');
document.getElementById('main').textContent = `Signed in as ${me.username}`;
