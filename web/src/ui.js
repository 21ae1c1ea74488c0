// Small DOM helpers and the account corner (sign in / sign out), shared by the views.

import { origin } from './api.js';
import { getWallets } from '@wallet-standard/app';
import { SignInError, signInWithEthereum } from './wallet.js';
import { signInWithSolana, solanaWallets } from './solana.js';
import * as session from './session.js';

/** document.createElement with attributes and children (text nodes for strings). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** Writes a status line; `alert` makes it an error screen readers announce. */
export function say(node, text, alert = false) {
  node.textContent = text;
  node.classList.toggle('error', alert);
  if (alert) node.setAttribute('role', 'alert');
}

/** Draws the account corner; `onChange` runs after a sign-in or sign-out. */
export function renderAccount(onChange) {
  const box = document.getElementById('account');
  const s = session.load();
  if (s) {
    const who = s.subject.split(':').pop();
    const out = el('button', { type: 'button', id: 'sign-out' }, 'Sign out');
    out.addEventListener('click', async () => {
      out.disabled = true;
      try {
        await origin.logout(s.token);
      } catch {
        /* revoked or expired already: forget it either way */
      }
      session.clear();
      renderAccount(onChange);
      onChange();
    });
    box.replaceChildren(el('span', { class: 'who', title: s.subject }, `${who.slice(0, 6)}…${who.slice(-4)}`), out);
    return;
  }
  const note = el('span', { id: 'sign-in-error', class: 'error', role: 'alert' });
  const signIn = (button, how) => button.addEventListener('click', async () => {
    box.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    note.textContent = '';
    try {
      session.save(await how());
      renderAccount(onChange);
      onChange();
    } catch (e) {
      note.textContent = e instanceof SignInError ? e.message : `Sign-in failed: ${e.message}`;
      box.querySelectorAll('button').forEach((b) => { b.disabled = false; });
    }
  });
  const eth = el('button', { type: 'button', id: 'sign-in' }, 'Sign in with Ethereum');
  signIn(eth, signInWithEthereum);
  const buttons = [eth];
  // One button per Solana wallet (Wallet Standard); wallets that register later redraw this.
  for (const w of solanaWallets()) {
    const b = el('button', { type: 'button', class: 'sign-in-solana', 'data-wallet': w.name }, `Sign in with ${w.name}`);
    signIn(b, () => signInWithSolana(w));
    buttons.push(b);
  }
  box.replaceChildren(...buttons, note);
  if (!watching) {
    watching = true;
    getWallets().on('register', () => {
      if (!session.load()) renderAccount(lastOnChange);
    });
  }
  lastOnChange = onChange;
}

let watching = false;
let lastOnChange = () => {};
