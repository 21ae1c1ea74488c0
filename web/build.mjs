#!/usr/bin/env node
// Builds the web app into dist/: one JavaScript bundle and one stylesheet, each named by a hash
// of its content (dist/assets/app-XXXXXXXX.js), their gzip copies (app-XXXXXXXX.js.gz), and
// dist/index.html naming them. Origin serves
// index.html for / and /watch/{id} (never cached) and dist/assets/* as immutable.
//
//   node build.mjs            (npm run build; make setup runs it)
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const out = join(here, 'dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(here, 'src/main.js'), join(here, 'src/app.css')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  outdir: join(out, 'assets'),
  entryNames: 'app-[hash]',
  // Players loaded on demand (dash.js) are chunks of their own, hashed too.
  splitting: true,
  chunkNames: 'chunk-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => p.split('/').pop());
const js = outputs.find((n) => n.startsWith('app-') && n.endsWith('.js'));
const css = outputs.find((n) => n.startsWith('app-') && n.endsWith('.css'));
if (!js || !css) throw new Error(`build: missing outputs in ${outputs.join(', ')}`);

const html = readFileSync(join(here, 'src/index.html'), 'utf8')
  .replace('__APP_JS__', `/assets/${js}`)
  .replace('__APP_CSS__', `/assets/${css}`);
writeFileSync(join(out, 'index.html'), html);
const size = (n) => readFileSync(join(out, 'assets', n)).length;
// Precompressed copies: origin sends `{name}.gz` to browsers that accept gzip.
for (const n of outputs) {
  writeFileSync(join(out, 'assets', `${n}.gz`), gzipSync(readFileSync(join(out, 'assets', n)), { level: 9 }));
}
const sri = createHash('sha256').update(html).digest('hex').slice(0, 12);
const chunks = outputs.filter((n) => n.startsWith('chunk-')).map((n) => `${n} (${size(n)} B)`);
process.stdout.write(
  `web: built ${js} (${size(js)} B), ${css} (${size(css)} B), index.html (${html.length} B, ${sri})` +
    `${chunks.length ? `, on demand: ${chunks.join(', ')}` : ''}\n`,
);
