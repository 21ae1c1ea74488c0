// The web app's entry: routes /watch/{id} to the watch page and / to the home page.

import { dashboard } from './dashboard.js';
import { el, renderAccount } from './ui.js';
import * as session from './session.js';
import { watch } from './watch.js';

async function home(main) {
  const s = session.load();
  if (!s) {
    main.replaceChildren(
      el('h1', {}, 'StreamGate'),
      el('p', {}, 'Sign in with your wallet to upload videos and choose who may watch them.'),
    );
    return;
  }
  await dashboard(main, s);
}

async function route() {
  const main = document.getElementById('main');
  const m = /^\/watch\/([A-Za-z0-9_-]{1,64})\/?$/.exec(location.pathname);
  if (m) {
    await watch(main, m[1]); // draws the account corner itself, once it can act on a sign-in
  } else {
    renderAccount(() => home(main));
    await home(main);
  }
}

route();
