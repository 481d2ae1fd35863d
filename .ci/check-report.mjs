// Opens the HTML report of a results folder in headless Chromium (Playwright driving Debian's
// chromium) and checks that it renders: the index links the experiment, the experiment page
// has one table row per method and every figure drawn at a readable size, no image is
// broken, nothing was fetched from a network, and the console stayed free of errors.
// Usage: node check-report.mjs <out> <experiment> <screenshot.png> [<top-screenshot.png>]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [out, experiment, shot, topShot] = process.argv.slice(2);
const expDir = path.resolve(out, experiment);
const summary = JSON.parse(fs.readFileSync(path.join(expDir, 'summary.json'), 'utf8'));
const methods = Object.keys(summary.methods).length;
const figures = fs.readdirSync(path.join(expDir, 'figures')).filter((f) => f.endsWith('.svg')).length;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  page.on('requestfailed', (r) => problems.push(`failed request: ${r.url()}`));
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) problems.push(`network request: ${r.url()}`); });

  await page.goto(pathToFileURL(path.resolve(out, 'index.html')).href);
  const link = page.locator(`a[href="${experiment}/index.html"]`);
  if (await link.count() !== 1) problems.push(`index.html has no link to ${experiment}`);
  await link.first().click();
  await page.waitForLoadState('load');
  if (!page.url().endsWith(`${experiment}/index.html`)) problems.push(`the link led to ${page.url()}`);

  const rows = await page.locator('table.results tbody tr').count();
  if (rows !== methods) problems.push(`the table has ${rows} rows, the summary ${methods} methods`);
  const drawn = await page.$$eval('figure svg', (svgs) => svgs.map((s) => {
    const box = s.getBoundingClientRect();
    return { id: s.closest('figure').id, width: box.width, height: box.height,
      marks: s.querySelectorAll('path, polyline, line, rect, circle, image').length };
  }));
  if (drawn.length !== figures) problems.push(`${drawn.length} figures on the page, ${figures} SVG files`);
  for (const f of drawn) {
    if (f.width < 300 || f.height < 150 || f.marks < 5) problems.push(`figure ${f.id} is not drawn: ${JSON.stringify(f)}`);
  }
  const broken = await page.$$eval('img', (imgs) => imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src));
  for (const src of broken) problems.push(`broken image ${src}`);
  const regression = await page.locator('#regression').textContent().catch(() => null);
  if (topShot) await page.screenshot({ path: topShot, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1900 } });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`report of ${experiment}: ${rows} table rows, ${drawn.length} figures drawn` +
    (regression ? `, regression check: ${regression.trim()}` : '') + `; screenshot ${shot}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
