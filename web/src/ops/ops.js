import '../common/base.css';
import './ops.css';
import { startApp } from '../common/shell.js';

const me = await startApp('FleetOps');
document.getElementById('main').textContent = `Signed in as ${me.username}`;
