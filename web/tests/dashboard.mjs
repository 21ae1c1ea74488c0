#!/usr/bin/env node
// Drives the creator dashboard (/) in Debian's Chromium as a person would, with an injected
// test wallet, and prints ONE JSON line about what happened:
//
//   node dashboard.mjs --url http://origin/ --key 0xKEY --file clip.mp4 --title T
//                      --contract 0x… [--chain eip155:31337] [--throttle 400000] [--timeout 180]
//
// 1. signs in (keyboard), 2. fills the form with an invalid contract and reads the error origin
// put next to the field, 3. fixes it and uploads over a throttled link (bytes/s), 4. pauses,
// reloads the page, chooses the same file again and uploads: tus-js-client resumes where it
// stopped, 5. waits in the list until the video is ready, watching its status and transcode
// progress change, 6. renames it, 7. copies its share link, reads the record as the page
// sees it, then deletes it after the confirmation (with --delete yes). [--screenshot FILE.png]
// keeps the dashboard before the delete.
import { chromium } from 'playwright-core';
import { injectWallet } from './wallet.mjs';

const CHROMIUM = process.env.STREAMGATE_CHROMIUM || '/usr/bin/chromium';
const opts = { chain: 'eip155:31337', throttle: 400_000, timeout: 180, screenshot: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, '');
  opts[k] = argv[++i];
}
for (const need of ['url', 'key', 'file', 'title', 'contract']) {
  if (!opts[need]) {
    process.stderr.write(`dashboard.mjs: --${need} is required\n`);
    process.exit(2);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const result = { steps: [], consoleErrors: [], statuses: [] };
const step = (name, data = {}) => result.steps.push({ name, ...data });

let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(opts.url).origin });
  await injectWallet(context, { key: opts.key });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && result.consoleErrors.length < 20) result.consoleErrors.push(m.text().slice(0, 300));
  });
  page.on('pageerror', (e) => result.consoleErrors.push(`pageerror: ${e.message}`.slice(0, 300)));
  const cdp = await context.newCDPSession(page);
  const throttle = (bytesPerSecond) => cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  });

  // 1. Sign in.
  await page.goto(opts.url, { waitUntil: 'load' });
  await page.focus('#sign-in');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#upload-form', { timeout: 20_000 });
  step('signed-in');

  const fill = async () => {
    await page.fill('#new-title', opts.title);
    await page.setInputFiles('#new-file', opts.file);
    await page.selectOption('.rules .rule:first-child select', 'erc721');
    await page.fill('[data-field="chain"]', opts.chain);
  };
  // 2. A bad contract: origin's error lands next to the field.
  await fill();
  await page.fill('[data-field="contract"]', 'not-an-address');
  await page.click('#upload');
  const err = await page.waitForSelector('[data-field="contract"] ~ .field-error:not(:empty)', { timeout: 10_000 });
  step('field-error', {
    text: await err.textContent(),
    invalid: await page.getAttribute('[data-field="contract"]', 'aria-invalid'),
  });

  // 3. Fixed, uploaded slowly; 4. paused at a third, the page reloaded, the same file again.
  await page.fill('[data-field="contract"]', opts.contract);
  await throttle(Number(opts.throttle));
  await page.click('#upload');
  await page.waitForFunction(() => Number(document.getElementById('upload-progress')?.value) >= 30, null, { timeout: 60_000 });
  await page.click('#pause');
  const pausedAt = Number(await page.getAttribute('#upload-progress', 'value'));
  await sleep(1000);
  step('paused', {
    at: pausedAt,
    after: Number(await page.getAttribute('#upload-progress', 'value')),
    status: await page.textContent('#upload-status'),
  });
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('#upload-form', { timeout: 20_000 });
  await throttle(-1);
  await fill();
  await page.fill('[data-field="contract"]', opts.contract);
  const firstProgress = page.evaluate(() => new Promise((resolve) => {
    const bar = document.getElementById('upload-progress');
    new MutationObserver(() => resolve(Number(bar.value))).observe(bar, { attributes: true, childList: true });
  }));
  await page.click('#upload');
  const resumedAt = await Promise.race([firstProgress, sleep(20_000).then(() => -1)]);
  await page.waitForFunction(() => /Uploaded/.test(document.getElementById('upload-status')?.textContent || ''), null, { timeout: 60_000 });
  step('uploaded', { resumedAt });

  // 5. The list follows it to ready.
  const until = Date.now() + Number(opts.timeout) * 1000;
  let item = null;
  for (;;) {
    item = await page.evaluate((title) => {
      const li = [...document.querySelectorAll('#contents li')].filter((l) => l.querySelector('a')?.textContent === title);
      return { count: li.length, id: li[0]?.dataset.id, badge: li[0]?.querySelector('.badge')?.textContent };
    }, opts.title);
    if (item.badge && result.statuses.at(-1) !== item.badge) result.statuses.push(item.badge);
    if (item.badge === 'ready' || item.badge === 'failed' || Date.now() > until) break;
    await sleep(300);
  }
  step('listed', item);

  // 6. Rename it.
  await page.click(`#contents li[data-id="${item.id}"] button:text("Rename")`);
  await page.fill(`#contents li[data-id="${item.id}"] input[aria-label="New title"]`, `${opts.title} (renamed)`);
  await page.click(`#contents li[data-id="${item.id}"] button:text("Save")`);
  await page.waitForFunction((t) => [...document.querySelectorAll('#contents a')].some((a) => a.textContent === t), `${opts.title} (renamed)`, { timeout: 10_000 });
  step('renamed');
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
  result.id = item.id;

  // 7. (--delete yes) The share link, the record, then a confirmed delete.
  if (opts.delete === 'yes') {
    const li = `#contents li[data-id="${item.id}"]`;
    await page.click(`${li} button:text("Copy link")`);
    await page.waitForSelector(`${li} button:text("Copied")`, { timeout: 5000 });
    step('shared', { link: await page.evaluate(() => navigator.clipboard.readText()) });
    result.record = await page.evaluate(async (id) => {
      const token = JSON.parse(sessionStorage.getItem('streamgate.session')).token;
      return (await fetch(`/v1/contents/${id}`, { headers: { authorization: `Bearer ${token}` } })).json();
    }, item.id);
    let asked = null;
    page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await page.click(`${li} button:text("Delete")`);
    await page.waitForSelector(li, { state: 'detached', timeout: 10_000 });
    step('deleted', { asked });
  }
} catch (e) {
  result.error = String(e?.message || e).split('\n')[0];
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
