// The watch page (/watch/{id}): title and poster, sign-in when needed, a playback grant from
// the edge, hls.js playing it; a refusal says in words whom the video is for. The grant is
// renewed before it expires, and hls.js's requests follow the newest token.

import Hls from 'hls.js';
import { ApiError, edge, edgeUrl, origin } from './api.js';
import { describe } from './policy.js';
import { el, renderAccount, say } from './ui.js';
import * as session from './session.js';

export async function watch(main, id) {
  let record;
  try {
    record = await origin.content(id);
  } catch (e) {
    main.replaceChildren(el('h1', {}, 'Not found'), el('p', { role: 'alert' }, e.status === 404 ? 'There is no such video.' : e.message));
    renderAccount(() => {});
    return;
  }
  document.title = `${record.title} · StreamGate`;
  const status = el('p', { id: 'status', role: 'status', 'aria-live': 'polite' });
  const video = el('video', { id: 'video', controls: '', playsinline: '', preload: 'none' });
  main.replaceChildren(el('h1', {}, record.title), el('div', { class: 'player' }, video), status);
  if (record.description) main.append(el('p', { class: 'muted' }, record.description));
  if (record.status !== 'ready') {
    say(status, record.status === 'failed' ? `This video could not be processed: ${record.error}` : 'This video is still being prepared. Try again in a moment.');
    renderAccount(() => {});
    return;
  }
  const start = async () => {
    const s = session.load();
    if (!s) {
      // Signed out (or never in): nothing keeps playing.
      window.__sgPlayer?.destroy();
      window.__sgPlayer = null;
      video.removeAttribute('src');
      say(status, `This video is for ${describe(record.policy)}. Sign in with your wallet to watch.`);
      return;
    }
    say(status, 'Checking your access…');
    let grant;
    try {
      grant = await edge.grant(id, s.token);
    } catch (e) {
      say(status, refusalText(e, record), true);
      if (e.status === 401) {
        session.clear();
        renderAccount(() => start());
      }
      return;
    }
    play(video, status, grant, id, s.token);
  };
  // Signing in (or out) here starts (or stops) playback.
  renderAccount(() => start());
  await start();
}

function refusalText(e, record) {
  if (!(e instanceof ApiError)) return String(e);
  switch (e.status) {
    case 403:
      return `You cannot watch this video: it is for ${describe(record.policy)}, and your wallet does not qualify (${e.message}).`;
    case 401:
      return 'Your session has ended. Sign in again to watch.';
    case 404:
      return 'This video is not available.';
    case 503:
      return 'Access cannot be checked right now (the chain did not answer). Try again in a moment.';
    default:
      return `Playback is not available: ${e.message}`;
  }
}

function play(video, status, grant, id, sessionToken) {
  let token = grant.token;
  const src = `${edgeUrl}${grant.hls}`;
  video.poster = `${edgeUrl}/p/${encodeURIComponent(token)}/${encodeURIComponent(id)}/poster.jpg`;
  // Every request goes out with the newest token (renewal swaps it mid-stream).
  const current = (url) => url.replace(/\/p\/[^/]+\//, `/p/${encodeURIComponent(token)}/`);
  const renew = () => {
    const left = Date.parse(grant.expires_at) - Date.now();
    setTimeout(async () => {
      try {
        grant = await edge.grant(id, sessionToken);
        token = grant.token;
        renew();
      } catch (e) {
        say(status, refusalText(e, {}), true);
      }
    }, Math.max(5000, left * 0.8));
  };
  if (new URLSearchParams(location.search).get('player') === 'dash') {
    // dash.js where asked (?player=dash): loaded on demand, a chunk of its own.
    import('dashjs').then(({ default: dashjs }) => {
      const player = dashjs.MediaPlayer().create();
      player.extend('RequestModifier', () => ({
        modifyRequestURL: (url) => current(url),
        modifyRequestHeader: (xhr) => xhr,
      }), true);
      player.on(dashjs.MediaPlayer.events.ERROR, (e) => say(status, `Playback failed (${e.error?.message || e.error?.code}).`, true));
      // Encrypted (cenc): keys from the edge's ClearKey license, through EME.
      if (grant.license) {
        player.setProtectionData({ 'org.w3.clearkey': { serverURL: `${edgeUrl}${grant.license}` } });
      }
      player.initialize(video, `${edgeUrl}${grant.dash}`, true);
      window.__sgPlayer = { destroy: () => player.reset() };
    }).catch((e) => say(status, `dash.js could not load: ${e.message}`, true));
  } else if (Hls.isSupported()) {
    // Encrypted (cenc): keys from the edge's ClearKey license, through EME, with the newest token.
    const eme = grant.license
      ? {
        emeEnabled: true,
        drmSystems: { 'org.w3.clearkey': { licenseUrl: `${edgeUrl}${grant.license}` } },
        licenseXhrSetup: (xhr, url) => xhr.open('POST', current(url), true),
      }
      : {};
    const hls = new Hls({ ...eme, xhrSetup: (xhr, url) => xhr.open('GET', current(url), true) });
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (d.fatal) say(status, `Playback failed (${d.details}).`, true);
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    window.__sgPlayer = hls;
  } else if (grant.license) {
    say(status, 'This video is encrypted for browsers with ClearKey (Chrome, Edge, Firefox); this browser cannot play it.', true);
    return;
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src; // Safari: native HLS (the token is renewed for the next grant)
  } else {
    say(status, 'This browser cannot play HLS.', true);
    return;
  }
  renew();
  say(status, 'Playing.');
  video.muted = true;
  video.play().catch(() => say(status, 'Press play to start.'));
}
