// The live stream (Server-Sent Events). EventSource reconnects by itself and sends
// Last-Event-ID, so the server replays what was missed or answers with `reset`.

/**
 * Opens `/api/v1/stream` and calls `handlers[event](data)` for position, status, alarm and
 * reset events; `onState(connected)` reports the connection.
 */
export function openStream(handlers, onState) {
  const source = new EventSource('/api/v1/stream');
  for (const kind of ['position', 'status', 'alarm', 'reset']) {
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
  source.addEventListener('open', () => onState(true));
  source.addEventListener('error', () => onState(source.readyState === EventSource.OPEN));
  return source;
}
