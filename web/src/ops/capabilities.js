// Which routes and query parameters this fleetd offers, from its OpenAPI document: newer
// reports (alarm summary, distance reconciliation, filtered rollups) are used when the server
// has them, instead of calling routes an older server would answer with 404 or 422.
import { api } from '../common/api.js';

export async function loadCapabilities() {
  const doc = await api('/openapi.json');
  const paths = doc.paths || {};
  const route = (path) => paths[`/api/v1${path}`]?.get;
  return {
    has: (path) => Boolean(route(path)),
    /** Whether GET `path` takes the query parameter `name`. */
    accepts: (path, name) => Boolean(route(path)?.parameters?.some((p) => p.name === name && p.in === 'query')),
  };
}
