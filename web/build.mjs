// Builds the web apps into dist/: one minified JS and CSS bundle per app (named by content
// hash, so browsers may cache them forever) and the HTML pages that load them. dist/ is
// checked in and embedded into the fleetd binary, so building fleetd never needs Node.js.
//
//   node build.mjs           rebuild dist/
//   node build.mjs --check   fail when dist/ is not what the sources build to
import * as esbuild from 'esbuild';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const apps = ['login', 'now', 'ops'];

async function build(outRoot) {
  rmSync(outRoot, { recursive: true, force: true });
  mkdirSync(join(outRoot, 'assets'), { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: Object.fromEntries(apps.map((a) => [a, `src/${a}/${a}.js`])),
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome105', 'firefox105', 'safari16'],
    outdir: join(outRoot, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    loader: { '.png': 'file', '.svg': 'file' },
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  for (const app of apps) {
    const outputs = Object.entries(result.metafile.outputs)
      .filter(([, o]) => o.entryPoint === `src/${app}/${app}.js`)
      .map(([path]) => path);
    const js = outputs.find((p) => p.endsWith('.js'));
    const css = Object.keys(result.metafile.outputs).find(
      (p) => p.endsWith('.css') && basename(p).startsWith(`${app}-`),
    );
    const page = readFileSync(join(here, `src/${app}/${app}.html`), 'utf8')
      .replace('{{js}}', `/assets/${basename(js)}`)
      .replace('{{css}}', css ? `/assets/${basename(css)}` : '');
    writeFileSync(join(outRoot, `${app}.html`), page);
  }
}

function listFiles(root, dir = root) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(root, p));
    else out.push(relative(root, p));
  }
  return out.sort();
}

if (process.argv.includes('--check')) {
  const scratch = mkdtempSync(join(tmpdir(), 'fleetd-web-'));
  await build(join(scratch, 'dist'));
  const want = listFiles(join(scratch, 'dist'));
  const have = listFiles(join(here, 'dist'));
  const differ = want.filter(
    (f) => !have.includes(f) || !readFileSync(join(scratch, 'dist', f)).equals(readFileSync(join(here, 'dist', f))),
  );
  const extra = have.filter((f) => !want.includes(f));
  rmSync(scratch, { recursive: true, force: true });
  if (differ.length || extra.length) {
    console.error(`web/dist is out of date (run: cd web && npm run build): ${[...differ, ...extra].join(', ')}`);
    process.exit(1);
  }
  console.log(`web/dist matches its sources (${want.length} files)`);
} else {
  await build(join(here, 'dist'));
  console.log('built web/dist');
}
