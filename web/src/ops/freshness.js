// The freshness banner: red with what is wrong when an ingest job is failing or stale
// (reporting.v_ingest_health_jobs), green when every job is fine, neutral while nothing has run.
import { ago, ageOf } from '../common/format.js';

/** Sets the banner from `/health/ingest` rows. */
export function renderFreshness(banner, jobs) {
  const failing = jobs.filter((j) => j.status === 'failing');
  const stale = jobs.filter((j) => j.status === 'stale');
  const problems = [
    ...failing.map(
      (j) => `${j.job} is failing (${j.consecutive_failures} failed ${j.consecutive_failures === 1 ? 'run' : 'runs'} in a row${j.last_error ? `: ${j.last_error}` : ''})`,
    ),
    ...stale.map((j) => `${j.job} is stale (last success ${j.last_success_at ? ago(ageOf(j.last_success_at)) : 'never'})`),
  ];
  let level;
  let text;
  if (problems.length) {
    level = 'bad';
    text = `Data may be out of date: ${problems.join('; ')}.`;
  } else if (!jobs.length || jobs.every((j) => j.status === 'never')) {
    level = 'neutral';
    text = 'No ingest job has run yet.';
  } else {
    const newest = jobs.map((j) => j.last_success_at).filter(Boolean).sort().at(-1);
    level = 'good';
    text = `Data is fresh: ${jobs.length} ingest ${jobs.length === 1 ? 'job' : 'jobs'} running normally${newest ? `, last success ${ago(ageOf(newest))}` : ''}.`;
  }
  banner.className = `banner ${level}`;
  banner.dataset.level = level;
  banner.textContent = text;
}
