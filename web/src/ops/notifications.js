// FleetOps › Notifications: admins see the rules, webhooks and delivery log; everyone sees
// their own notification settings. Built on first show, re-read each time the section opens.
import { DeliveryLog, Webhooks } from './webhooks.js';
import { MySettings } from './my-settings.js';
import { Rules } from './rules.js';

let parts = null;

export async function loadNotifications(ctx) {
  const admin = ctx.me.role === 'admin';
  if (!parts) {
    const rules = admin ? new Rules(ctx) : null;
    parts = {
      rules,
      webhooks: admin ? new Webhooks(() => rules.load()) : null,
      log: admin ? new DeliveryLog() : null,
      mine: new MySettings(),
    };
  }
  await Promise.all([parts.rules?.load(), parts.webhooks?.load(), parts.log?.load(), parts.mine.load()]);
  // shown once loaded, so its buttons work from the first click
  document.getElementById('notify-admin').hidden = !admin;
}
