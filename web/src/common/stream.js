// The live stream (Server-Sent Events). EventSource reconnects by itself after a dropped
// connection and sends Last-Event-ID, so the server replays what was missed or answers with
// `reset`. But it gives up for good on any answer other than 200 (429 when the user already
// holds as many streams as allowed, 401 when the session ended): then this asks who is signed
// in, sends a signed-out person to the login page, and otherwise opens a new stream after a
// growing pause.

import { api } from './api.js';

/** First pause before reopening a refused stream; it doubles up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 60_000;

/**
 * Opens `/api/v1/stream${search}` and calls `handlers[event](data)` for each event kind it has
 * a handler for (position, status, alarm, notification, reset); `onState(connected,
 * retryInMs)` reports the connection (`retryInMs` is set while waiting to reopen a refused
 * stream).
 */
export function openStream(handlers, onState, search = '') {
  let wait = RETRY_FIRST_MS;

  const connect = () => {
    const source = new EventSource(`/api/v1/stream${search}`);
    for (const kind of Object.keys(handlers)) {
      source.addEventListener(kind, (e) => {
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return; // a malformed event changes nothing
        }
        handlers[kind](data);
      });
    }
    source.addEventListener('open', () => {
      wait = RETRY_FIRST_MS;
      onState(true);
    });
    source.addEventListener('error', () => {
      if (source.readyState !== EventSource.CLOSED) {
        onState(source.readyState === EventSource.OPEN); // the browser is reconnecting
        return;
      }
      source.close();
      refused();
    });
  };

  const refused = async () => {
    try {
      await api('/auth/me'); // a 401 sends the person to the login page, and back here after
    } catch (e) {
      if (e?.status === 401) return;
      // anything else (the server unreachable, busy): try the stream again later
    }
    const pause = wait;
    wait = Math.min(wait * 2, RETRY_MAX_MS);
    onState(false, pause);
    setTimeout(connect, pause);
  };

  connect();
}
