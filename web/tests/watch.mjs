#!/usr/bin/env node
// Drives the web app's watch page in Debian's Chromium with an injected test wallet and prints
// ONE JSON line about what a person would have seen.
//
//   node watch.mjs --url http://origin/watch/{id} [--key 0xPRIVATEKEY] [--chain-id 31337]
//                  [--solana-seed HEX32] [--refuse] [--seconds 3] [--timeout 40]
//                  [--screenshot FILE.png] [--sign-out]
//
// --key: window.ethereum is an EIP-1193 provider backed by a viem local account (the key stays
// in Node: the page's requests cross into Node through a binding); without it the browser has
// no wallet. --refuse: the wallet answers personal_sign with EIP-1193 error 4001 (the user said
// no). --solana-seed: instead, a Wallet Standard Solana wallet (Ed25519 from that seed, signing
// in Node) is registered in the page, and its sign-in button is the one pressed. The report: whether sign-in happened, the status and sign-in error texts shown, whether
// the video played (currentTime), console errors (CSP violations land there), and the page's
// weight (bytes of the document, scripts and styles from origin).
import { chromium } from 'playwright-core';
import { injectSolanaWallet, injectWallet } from './wallet.mjs';

const CHROMIUM = process.env.STREAMGATE_CHROMIUM || '/usr/bin/chromium';
const opts = {
  seconds: 3, timeout: 40, chainId: 31337, refuse: false, key: null, url: null, screenshot: null,
  solanaSeed: null, signOut: false,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const v = () => argv[++i];
  switch (argv[i]) {
    case '--url': opts.url = v(); break;
    case '--key': opts.key = v(); break;
    case '--chain-id': opts.chainId = Number(v()); break;
    case '--refuse': opts.refuse = true; break;
    case '--seconds': opts.seconds = Number(v()); break;
    case '--timeout': opts.timeout = Number(v()); break;
    case '--screenshot': opts.screenshot = v(); break;
    case '--solana-seed': opts.solanaSeed = v(); break;
    case '--sign-out': opts.signOut = true; break;
    default:
      process.stderr.write(`watch.mjs: unknown argument ${argv[i]}\n`);
      process.exit(2);
  }
}
if (!opts.url) {
  process.stderr.write('watch.mjs: --url is required\n');
  process.exit(2);
}
const pageOrigin = new URL(opts.url).origin;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const result = {
  signedIn: false, status: null, signInError: null, played: false, currentTime: 0,
  consoleErrors: [], weight: { document: 0, script: 0, stylesheet: 0 }, signRequests: 0,
};
let browser;
let quiet = false;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
  // A phone-sized viewport: the app must work there.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  if (opts.key) {
    await injectWallet(context, {
      key: opts.key,
      chainId: opts.chainId,
      refuse: opts.refuse,
      onSign: () => { result.signRequests++; },
    });
  }
  if (opts.solanaSeed) {
    result.solanaAddress = await injectSolanaWallet(context, {
      seed: Buffer.from(opts.solanaSeed, 'hex'),
      refuse: opts.refuse,
      onSign: () => { result.signRequests++; },
    });
  }
  const page = await context.newPage();
  page.on('console', (m) => {
    if (!quiet && m.type() === 'error' && result.consoleErrors.length < 20) result.consoleErrors.push(m.text().slice(0, 300));
  });
  page.on('pageerror', (e) => result.consoleErrors.push(`pageerror: ${e.message}`.slice(0, 300)));
  page.on('response', async (resp) => {
    const type = resp.request().resourceType();
    if (new URL(resp.url()).origin !== pageOrigin || !(type in result.weight)) return;
    try {
      result.weight[type] += (await resp.body()).length;
    } catch {
      /* a body the browser dropped */
    }
  });
  await page.goto(opts.url, { waitUntil: 'load' });
  const button = opts.solanaSeed ? '.sign-in-solana' : '#sign-in';
  await page.waitForSelector(`${button}, #sign-out`, { timeout: opts.timeout * 1000 });
  if (await page.$(button)) {
    await page.focus(button); // keyboard: the button takes focus and Enter presses it
    await page.keyboard.press('Enter');
  }
  const until = Date.now() + opts.timeout * 1000;
  let playingSince = null;
  for (;;) {
    const s = await page.evaluate(() => ({
      signedIn: !!document.getElementById('sign-out'),
      status: document.getElementById('status')?.textContent || null,
      signInError: document.getElementById('sign-in-error')?.textContent || null,
      t: document.getElementById('video')?.currentTime || 0,
      alert: document.querySelector('#status[role=alert]') !== null,
    }));
    Object.assign(result, { signedIn: s.signedIn, status: s.status, signInError: s.signInError || null });
    result.currentTime = Math.round(s.t * 1000) / 1000;
    if (s.t > 1) {
      result.played = true;
      playingSince ??= Date.now();
      if (Date.now() - playingSince > opts.seconds * 1000) break;
    }
    if (s.alert || (s.signInError && !s.signedIn)) break;
    if (Date.now() > until) break;
    await sleep(200);
  }
  // --sign-out: press "Sign out" (by keyboard); playback stops, the button to sign in is back,
  // and origin refuses the old session (revoked, not just forgotten by the page).
  if (opts.signOut && result.signedIn) {
    quiet = true; // the revoked session's 401 below is the point, not an error of the page
    const old = await page.evaluate(() => JSON.parse(sessionStorage.getItem('streamgate.session') || 'null')?.token);
    await page.focus('#sign-out');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#sign-in', { timeout: 10_000 });
    result.afterSignOut = await page.evaluate(async (token) => ({
      stored: sessionStorage.getItem('streamgate.session'),
      playing: !!window.__sgPlayer,
      status: document.getElementById('status')?.textContent || null,
      oldSession: (await fetch('/v1/contents?owner=me', { headers: { authorization: `Bearer ${token}` } })).status,
    }), old);
  }
  // What the person saw at the end (README's screenshots are taken this way).
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
} catch (e) {
  result.error = String(e?.message || e).split('\n')[0];
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
