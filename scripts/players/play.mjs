#!/usr/bin/env node
// Headless-browser player check: plays a gated stream through the edge with hls.js or dash.js in
// Debian's Chromium and prints ONE JSON line about what happened.
//
//   node play.mjs --kind hls|dash --url URL [--seconds 6] [--timeout 30] [--cookie-mode]
//                 [--cookie NAME=VALUE] [--page-port N] [--ca-file PEM] [--text-lang LANG]
//                 [--audio-lang LANG] [--license URL]
//
// The report lists the tracks the player offers (`tracks`: its audio and text tracks with their
// languages, and the video element's textTracks). --text-lang: once playing, select that
// language's text track through the player's API and wait (within --timeout) until its cues are
// loaded; the report's `text` gives the track and its first cues. Without those cues: exit 1.
// --audio-lang: then switch to that language's audio rendition through the player's API and
// require playback to go on in it (the player reports it current, currentTime advances 1 s
// more, the edge is asked for more); the report's `audioSwitch` says how it went.
//
// --license: the stream is encrypted (Common Encryption); the player asks this W3C ClearKey
// license URL (the grant's `license`, relative to --url) for its keys through EME: hls.js with
// `emeEnabled` and `drmSystems['org.w3.clearkey'].licenseUrl`, dash.js with `setProtectionData`.
// The report's `license` counts the license requests the page made and their statuses.
//
// --ca-file: an https:// edge whose certificate chains to PEM (the stack's STACK_CA_FILE). The
// browser gets a private home whose NSS database trusts that CA, as a system would after
// installing it: no certificate checks are turned off.
//
// The page is served from this process on 127.0.0.1 (a random port), so it is cross-origin to the
// edge: the edge's CORS headers are part of what is checked. Exit 0 when the video played, no edge
// request failed or answered 4xx/5xx, and no player reported a fatal error; 1 otherwise; 2 on a
// usage error. Tokens (the `/p/{token}/` path segment) never reach the output.
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const USAGE =
  'usage: node play.mjs --kind hls|dash --url URL [--seconds 6] [--timeout 30] ' +
  '[--cookie-mode] [--cookie NAME=VALUE] [--page-port N] [--ca-file PEM] [--text-lang LANG] ' +
  '[--audio-lang LANG] [--license URL]';
const CHROMIUM = process.env.STREAMGATE_CHROMIUM || '/usr/bin/chromium';
const LIBS = {
  '/hls.js': new URL('./node_modules/hls.js/dist/hls.min.js', import.meta.url),
  '/dash.js': new URL('./node_modules/dashjs/dist/dash.all.min.js', import.meta.url),
};

function usage(message) {
  process.stderr.write(`play.mjs: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    seconds: 6, timeout: 30, cookieMode: false, cookie: null, pagePort: 0, noCors: false,
    caFile: null, textLang: null, audioLang: null, license: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--kind': opts.kind = value(); break;
      case '--url': opts.url = value(); break;
      case '--seconds': opts.seconds = Number(value()); break;
      case '--timeout': opts.timeout = Number(value()); break;
      case '--cookie-mode': opts.cookieMode = true; break;
      case '--cookie': opts.cookie = value(); opts.cookieMode = true; break;
      case '--page-port': opts.pagePort = Number(value()); break;
      case '--ca-file': opts.caFile = value(); break;
      case '--text-lang': opts.textLang = value(); break;
      case '--audio-lang': opts.audioLang = value(); break;
      case '--license': opts.license = value(); break;
      // Trials only, before the edge sends CORS headers: turns the browser's CORS checks off.
      case '--insecure-no-cors': opts.noCors = true; break;
      case '-h': case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      default: usage(`unknown argument ${arg}`);
    }
  }
  if (opts.kind !== 'hls' && opts.kind !== 'dash') usage('--kind must be hls or dash');
  if (!opts.url) usage('--url is required');
  try {
    opts.origin = new URL(opts.url).origin;
  } catch {
    usage('--url is not a URL');
  }
  if (opts.license !== null) {
    try {
      opts.license = new URL(opts.license, opts.url).href;
    } catch {
      usage('--license is not a URL');
    }
  }
  if (!(opts.seconds > 0)) usage('--seconds must be a positive number');
  if (!(opts.timeout > 0)) usage('--timeout must be a positive number');
  if (!Number.isInteger(opts.pagePort) || opts.pagePort < 0 || opts.pagePort > 65535) {
    usage('--page-port must be a port number (0: any free port)');
  }
  if (opts.cookie !== null && !/^[^=;\s]+=[^;\s]*$/.test(opts.cookie)) {
    usage('--cookie must be NAME=VALUE');
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// Everything printed goes through redact(): the token path segment, token-like query parameters,
// and the cookie's value are replaced.
const secrets = [];
const tokenInUrl = /\/p\/([^/?#\s"'<>]+)\//.exec(new URL(opts.url).pathname);
if (tokenInUrl) secrets.push(tokenInUrl[1], decodeURIComponent(tokenInUrl[1]));
if (opts.cookie) secrets.push(opts.cookie.slice(opts.cookie.indexOf('=') + 1));
function redact(text) {
  let out = String(text)
    .replace(/\/p\/[^/?#\s"'<>]+\//g, '/p/<token>/')
    .replace(/([?&](?:token|sig|signature|jwt|access_token)=)[^&#\s"'<>]+/gi, '$1<redacted>');
  for (const s of secrets) if (s && s.length >= 8) out = out.split(s).join('<redacted>');
  return out;
}

function pageHtml() {
  // JSON in a <script>: escape '<' so nothing in the URL can close the element.
  const config = JSON.stringify({
    kind: opts.kind, url: opts.url, credentials: opts.cookieMode, license: opts.license,
  })
    .replace(/</g, '\\u003c');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>StreamGate player check</title></head>
<body>
<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script src="/${opts.kind}.js"></script>
<script>
const cfg = ${config};
const video = document.getElementById('v');
const sg = (window.__sg = { errors: [], maxTime: 0, ended: false, started: false });
function note(e) { if (sg.errors.length < 50) sg.errors.push(e); }
video.addEventListener('timeupdate', () => { sg.maxTime = Math.max(sg.maxTime, video.currentTime); });
video.addEventListener('playing', () => { sg.started = true; });
video.addEventListener('ended', () => { sg.ended = true; });
video.addEventListener('error', () => {
  const err = video.error || {};
  note({ player: 'video', event: 'error', code: err.code, message: err.message, fatal: true });
});
try {
  if (cfg.kind === 'hls') {
    if (!Hls.isSupported()) throw new Error('hls.js: Media Source Extensions not supported');
    const clearkey = cfg.license
      ? {
        emeEnabled: true,
        drmSystems: { 'org.w3.clearkey': { licenseUrl: cfg.license } },
        licenseXhrSetup: cfg.credentials ? (xhr) => { xhr.withCredentials = true; } : undefined,
      }
      : {};
    const hls = new Hls({
      ...clearkey,
      xhrSetup: cfg.credentials ? (xhr) => { xhr.withCredentials = true; } : undefined,
      fetchSetup: cfg.credentials
        ? (context, init) => new Request(context.url, { ...init, credentials: 'include' })
        : undefined,
    });
    hls.on(Hls.Events.ERROR, (_, d) => note({
      player: 'hls', event: 'error', type: d.type, details: d.details, fatal: !!d.fatal,
      url: d.url || (d.frag && d.frag.url) || (d.context && d.context.url) || undefined,
      status: (d.response && d.response.code) || undefined,
      message: d.error ? String(d.error.message || d.error) : undefined,
    }));
    hls.loadSource(cfg.url);
    hls.attachMedia(video);
    window.__player = hls;
  } else {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    player.initialize(video, null, true);
    // No type: applies to every request type (manifest, init and media segments, ...).
    if (cfg.credentials) player.setXHRWithCredentialsForType(undefined, true);
    if (cfg.license) {
      player.setProtectionData({
        'org.w3.clearkey': { serverURL: cfg.license, withCredentials: !!cfg.credentials },
      });
    }
    const ev = dashjs.MediaPlayer.events;
    player.on(ev.ERROR, (e) => {
      const err = e.error || {};
      note({ player: 'dash', event: 'error', code: err.code, message: err.message, fatal: true });
    });
    player.on(ev.PLAYBACK_ERROR, (e) => {
      const err = e.error || {};
      note({ player: 'dash', event: 'playbackError', code: err.code, message: err.message || String(err), fatal: true });
    });
    player.attachSource(cfg.url);
    window.__player = player;
  }
} catch (e) {
  note({ player: cfg.kind, event: 'setup', message: String((e && e.message) || e), fatal: true });
}
// What the player offers, by its own API and on the video element.
window.__tracks = () => {
  const p = window.__player;
  const out = { audio: [], text: [], element: [] };
  if (p && cfg.kind === 'hls') {
    out.audio = (p.audioTracks || []).map((t) => ({ lang: t.lang || null, name: t.name }));
    out.text = (p.subtitleTracks || []).map((t) => ({ lang: t.lang || null, name: t.name }));
  } else if (p) {
    const label = (t) => (t.labels && t.labels[0] && t.labels[0].text) || null;
    out.audio = p.getTracksFor('audio').map((t) => ({ lang: t.lang || null, name: label(t) }));
    out.text = p.getTracksFor('text').map((t) => ({ lang: t.lang || null, name: label(t) }));
  }
  out.element = Array.from(video.textTracks).map((t) => ({
    kind: t.kind, language: t.language, label: t.label, mode: t.mode,
    cues: t.cues ? t.cues.length : null,
  }));
  return out;
};
// Selects the text track in that language through the player; true once chosen.
window.__showText = (lang) => {
  const p = window.__player;
  if (!p) return false;
  if (cfg.kind === 'hls') {
    const i = (p.subtitleTracks || []).findIndex((t) => t.lang === lang);
    if (i < 0) return false;
    p.subtitleDisplay = true;
    if (p.subtitleTrack !== i) p.subtitleTrack = i;
    return true;
  }
  const tracks = p.getTracksFor('text');
  const i = tracks.findIndex((t) => t.lang === lang);
  if (i < 0) return false;
  p.enableText(true);
  p.setTextTrack(i);
  return true;
};
// Selects the audio rendition in that language through the player; true once asked.
window.__selectAudio = (lang) => {
  const p = window.__player;
  if (!p) return false;
  if (cfg.kind === 'hls') {
    const i = (p.audioTracks || []).findIndex((t) => t.lang === lang);
    if (i < 0) return false;
    if (p.audioTrack !== i) p.audioTrack = i;
    return true;
  }
  const t = p.getTracksFor('audio').find((x) => x.lang === lang);
  if (!t) return false;
  p.setCurrentTrack(t);
  return true;
};
// The language of the audio rendition the player says is current.
window.__currentAudio = () => {
  const p = window.__player;
  if (!p) return null;
  if (cfg.kind === 'hls') {
    const t = (p.audioTracks || [])[p.audioTrack];
    return t ? t.lang || null : null;
  }
  const t = p.getCurrentTrackFor('audio');
  return t ? t.lang || null : null;
};
// The element's showing track in that language and its first cues, once it has some.
window.__cues = (lang) => {
  const t = Array.from(video.textTracks).find((x) => x.language === lang && x.mode === 'showing');
  if (!t || !t.cues || t.cues.length === 0) return null;
  return {
    kind: t.kind, language: t.language, label: t.label, count: t.cues.length,
    first: Array.from(t.cues).slice(0, 3).map((c) => ({ start: c.startTime, end: c.endTime, text: c.text })),
  };
};
</script>
</body></html>`;
}

function startServer() {
  const html = pageHtml();
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    try {
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(html);
      } else if (path === '/favicon.ico') {
        res.writeHead(204);
        res.end();
      } else if (LIBS[path]) {
        const body = await readFile(LIBS[path]);
        res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
        res.end(body);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.pagePort, '127.0.0.1', () => resolve(server));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const t0 = Date.now();
  const result = {
    kind: opts.kind,
    pageOrigin: null,
    currentTime: 0,
    requests: 0,
    statuses: {},
    bad: [],
    aborted: 0,
    playerErrors: [],
    consoleErrors: [],
    played: false,
    license: { url: opts.license ? redact(opts.license) : null, requests: 0, statuses: {} },
  };
  let closing = false;
  const isEdge = (u) => {
    try { return new URL(u).origin === opts.origin; } catch { return false; }
  };

  let server;
  let browser;
  let home;
  try {
    server = await startServer();
    const pageUrl = `http://127.0.0.1:${server.address().port}/`;
    result.pageOrigin = new URL(pageUrl).origin;
    const args = ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'];
    if (opts.noCors) args.push('--disable-web-security');
    const env = { ...process.env };
    if (opts.caFile) {
      // Chromium on Linux trusts what $HOME/.pki/nssdb trusts: a fresh home with the CA only.
      home = mkdtempSync(join(tmpdir(), 'sg-play-'));
      const db = join(home, '.pki', 'nssdb');
      mkdirSync(db, { recursive: true });
      execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
      execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'streamgate-ca', '-t', 'C,,', '-i', opts.caFile]);
      env.HOME = home;
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, env });
    const context = await browser.newContext();
    if (opts.cookie) {
      const eq = opts.cookie.indexOf('=');
      await context.addCookies([
        { name: opts.cookie.slice(0, eq), value: opts.cookie.slice(eq + 1), url: opts.origin },
      ]);
    }
    const page = await context.newPage();

    page.on('request', (req) => {
      if (!closing && isEdge(req.url())) result.requests++;
    });
    page.on('response', (resp) => {
      if (closing || !isEdge(resp.url())) return;
      const status = resp.status();
      if (opts.license && resp.url() === opts.license && resp.request().method() === 'POST') {
        result.license.requests++;
        result.license.statuses[status] = (result.license.statuses[status] || 0) + 1;
      }
      result.statuses[status] = (result.statuses[status] || 0) + 1;
      if (status >= 400) result.bad.push({ url: redact(resp.url()), status });
    });
    page.on('requestfailed', (req) => {
      if (closing || !isEdge(req.url())) return;
      const error = (req.failure() && req.failure().errorText) || 'failed';
      // A player cancelling its own request (level switch, seek, teardown) is not a failure.
      if (error === 'net::ERR_ABORTED') {
        result.aborted++;
        return;
      }
      result.bad.push({ url: redact(req.url()), status: null, error });
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' && result.consoleErrors.length < 20) {
        result.consoleErrors.push(redact(msg.text()).slice(0, 500));
      }
    });
    page.on('pageerror', (err) => {
      if (result.consoleErrors.length < 20) {
        result.consoleErrors.push(redact(`pageerror: ${err.message}`).slice(0, 500));
      }
    });

    await page.goto(pageUrl, { waitUntil: 'load' });

    // Played: currentTime reaches min(2, seconds/2), or half the duration for a shorter video.
    const target = Math.min(2, opts.seconds / 2);
    const start = Date.now();
    const timeoutAt = start + opts.timeout * 1000;
    let state = { maxTime: 0, currentTime: 0, duration: NaN, ended: false, buffered: [], errors: [] };
    for (;;) {
      state = await page.evaluate(() => {
        const v = document.getElementById('v');
        const sg = window.__sg;
        const errors = sg.errors.splice(0);
        return {
          maxTime: Math.max(sg.maxTime, v.currentTime),
          currentTime: v.currentTime,
          duration: v.duration,
          ended: sg.ended || v.ended,
          paused: v.paused,
          readyState: v.readyState,
          buffered: Array.from({ length: v.buffered.length },
            (_, i) => [v.buffered.start(i), v.buffered.end(i)]),
          errors,
        };
      });
      for (const e of state.errors) {
        const clean = Object.fromEntries(
          Object.entries(e).filter(([, v]) => v !== undefined && v !== null)
            .map(([k, v]) => [k, typeof v === 'string' ? redact(v).slice(0, 500) : v]),
        );
        if (result.playerErrors.length < 50) result.playerErrors.push(clean);
      }
      const need = Number.isFinite(state.duration) && state.duration > 0
        ? Math.min(target, state.duration / 2)
        : target;
      if (state.maxTime >= need && state.maxTime > 0) result.played = true;
      const now = Date.now();
      const fatal = result.playerErrors.some((e) => e.fatal);
      if (fatal && !result.played) break; // a fatal error before playing: no point waiting
      if (result.played && (state.ended || now - start >= opts.seconds * 1000)) break;
      if (!result.played && now >= timeoutAt) break;
      await sleep(250);
    }
    if (result.played && opts.textLang) {
      const until = Date.now() + opts.timeout * 1000;
      while (Date.now() < until) {
        const chosen = await page.evaluate((l) => window.__showText(l), opts.textLang);
        result.text = chosen ? await page.evaluate((l) => window.__cues(l), opts.textLang) : null;
        if (result.text) break;
        await sleep(250);
      }
    }
    if (result.played && opts.audioLang) {
      const sw = { lang: opts.audioLang, from: await page.evaluate(() => window.__currentAudio()) };
      const t0 = await page.evaluate(() => document.getElementById('v').currentTime);
      const requests0 = result.requests;
      sw.asked = await page.evaluate((l) => window.__selectAudio(l), opts.audioLang);
      const until = Date.now() + opts.timeout * 1000;
      while (sw.asked && Date.now() < until) {
        sw.to = await page.evaluate(() => window.__currentAudio());
        const v = await page.evaluate(() => {
          const el = document.getElementById('v');
          return { t: el.currentTime, ended: el.ended };
        });
        sw.advanced = Math.round((v.t - t0) * 1000) / 1000;
        sw.requests = result.requests - requests0;
        if (sw.to === opts.audioLang && (sw.advanced >= 1 || v.ended) && sw.requests > 0) {
          sw.ok = true;
          break;
        }
        await sleep(250);
      }
      result.audioSwitch = sw;
    }
    if (result.played) result.tracks = await page.evaluate(() => window.__tracks());
    const r3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
    result.currentTime = r3(state.currentTime);
    // Where the video element stood at the end: helps tell a stall from a refusal.
    result.video = {
      duration: r3(state.duration),
      ended: !!state.ended,
      paused: !!state.paused,
      readyState: state.readyState,
      buffered: (state.buffered || []).map(([a, b]) => [r3(a), r3(b)]),
    };
  } catch (e) {
    result.error = redact(String((e && e.message) || e)).split('\n')[0].slice(0, 500);
  } finally {
    closing = true;
    if (browser) await browser.close().catch(() => {});
    if (server) server.close();
    if (home) rmSync(home, { recursive: true, force: true });
  }
  result.elapsedMs = Date.now() - t0;
  const fatal = result.playerErrors.some((e) => e.fatal);
  const textOk = (!opts.textLang || !!result.text)
    && (!opts.audioLang || !!(result.audioSwitch && result.audioSwitch.ok));
  // An encrypted stream played only if the keys came from the license endpoint.
  const keysOk = !opts.license || (result.license.statuses[200] || 0) > 0;
  const ok = result.played && result.bad.length === 0 && !fatal && !result.error && textOk
    && keysOk;
  process.stdout.write(`${redact(JSON.stringify(result))}\n`);
  return ok ? 0 : 1;
}

// A hard stop in case the browser itself hangs.
const hardStop = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ kind: opts.kind, played: false, error: 'hard timeout' })}\n`);
  process.exit(1);
}, (opts.timeout + opts.seconds + 30) * 1000);
hardStop.unref();

main().then((code) => process.exit(code));
