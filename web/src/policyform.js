// The "who may watch" form: conditions (public, an allowlist, an ERC-721/1155/20 contract on a
// chain, an SPL mint or a verified Metaplex collection), combined with any/all, turned into the
// policy JSON origin validates. Origin's errors name the field (`policy.any[1].erc721.contract:
// …`): `showError` puts each next to its input.

import { el } from './ui.js';

const KINDS = {
  public: { label: 'Everyone', fields: [] },
  allow: { label: 'These wallets', fields: [['accounts', 'Accounts (one per line: eip155:1:0x… or solana:mainnet:…)', 'textarea']] },
  erc721: { label: 'Holders of an ERC-721', fields: [['chain', 'Chain (eip155:1)'], ['contract', 'Contract (0x…)'], ['token_ids', 'Token ids (optional, comma-separated)']] },
  erc1155: { label: 'Holders of an ERC-1155 token', fields: [['chain', 'Chain (eip155:1)'], ['contract', 'Contract (0x…)'], ['token_id', 'Token id'], ['min_balance', 'Minimum balance (optional)']] },
  erc20: { label: 'Holders of an ERC-20', fields: [['chain', 'Chain (eip155:1)'], ['contract', 'Contract (0x…)'], ['min_balance', 'Minimum balance']] },
  spl: { label: 'Holders of an SPL token', fields: [['cluster', 'Cluster (solana:mainnet)'], ['mint', 'Mint'], ['min_balance', 'Minimum balance (optional)']] },
  metaplex_collection: { label: 'Holders of a verified Metaplex collection', fields: [['cluster', 'Cluster (solana:mainnet)'], ['collection', 'Collection']] },
};

let rowSeq = 0;

/** A policy form; `.node` to insert, `.value()` the policy, `.showError(message)`. */
export function policyForm(initial = { public: true }) {
  const rows = el('div', { class: 'rules' });
  const combine = el('select', { 'aria-label': 'Combine the conditions', class: 'combine' },
    el('option', { value: 'any' }, 'any of these'), el('option', { value: 'all' }, 'all of these'));
  const add = el('button', { type: 'button', class: 'secondary' }, 'Add a condition');
  const general = el('p', { class: 'error field-error', role: 'alert' });
  const node = el('fieldset', { class: 'policy' }, el('legend', {}, 'Who may watch'),
    el('label', {}, 'Viewers must meet ', combine), rows, add, general);
  const addRow = (kind = 'public', values = {}) => rows.append(row(kind, values, () => refresh()));
  const refresh = () => {
    combine.parentElement.hidden = rows.children.length < 2;
  };
  add.addEventListener('click', () => { addRow('erc721', { chain: 'eip155:1' }); refresh(); });
  for (const [kind, values] of flatten(initial, combine)) addRow(kind, values);
  refresh();
  return {
    node,
    value() {
      const rules = [...rows.children].map((r) => r.rule());
      return rules.length === 1 ? rules[0] : { [combine.value]: rules };
    },
    clearErrors() {
      node.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; });
      node.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
    },
    /** Puts origin's message next to the field it names; true when one was found. */
    showError(message) {
      const colon = message.indexOf(': ');
      const path = colon > 0 ? message.slice(0, colon).split('.') : [];
      const text = colon > 0 ? message.slice(colon + 2) : message;
      let at = 1;
      let index = rows.children.length === 1 ? 0 : null;
      const combined = /^(?:any|all)\[(\d+)\]$/.exec(path[1] || '');
      if (combined) {
        index = Number(combined[1]);
        at = 2;
      }
      const kind = (path[at] || '').replace(/\[\d+\]$/, '');
      const field = kind === 'allow' ? 'accounts' : (path[at + 1] || '').replace(/\[\d+\]$/, '');
      const r = path[0] === 'policy' && index !== null ? rows.children[index] : null;
      const input = r && field ? r.querySelector(`[data-field="${field}"]`) : null;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.parentElement.querySelector('.field-error').textContent = text;
        input.focus();
        return true;
      }
      general.textContent = message;
      return false;
    },
  };
}

/** The rows a policy already has (one level of any/all). */
function flatten(policy, combine) {
  const key = policy && Object.keys(policy)[0];
  if (key === 'any' || key === 'all') {
    combine.value = key;
    return policy[key].map((r) => flatten(r, combine)[0]);
  }
  if (key === 'public') return [['public', {}]];
  if (key === 'allow') return [['allow', { accounts: policy.allow.join('\n') }]];
  if (KINDS[key]) {
    const v = { ...policy[key] };
    if (Array.isArray(v.token_ids)) v.token_ids = v.token_ids.join(', ');
    return [[key, v]];
  }
  return [['public', {}]];
}

function row(kind, values, changed) {
  const id = `rule-${++rowSeq}`;
  const select = el('select', { id: `${id}-kind`, 'aria-label': 'Condition' });
  for (const [k, d] of Object.entries(KINDS)) select.append(el('option', { value: k }, d.label));
  select.value = kind;
  const fields = el('div', { class: 'fields' });
  const remove = el('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove this condition' }, 'Remove');
  const r = el('div', { class: 'rule' }, select, fields, remove);
  const draw = () => {
    fields.replaceChildren();
    for (const [name, label, type] of KINDS[select.value].fields) {
      const input = type === 'textarea'
        ? el('textarea', { id: `${id}-${name}`, 'data-field': name, rows: '3' })
        : el('input', { id: `${id}-${name}`, 'data-field': name, type: 'text', autocomplete: 'off' });
      input.value = values[name] ?? '';
      fields.append(el('div', { class: 'field' }, el('label', { for: input.id }, label), input,
        el('span', { class: 'error field-error', role: 'alert' })));
    }
  };
  select.addEventListener('change', () => { values = {}; draw(); });
  remove.addEventListener('click', () => {
    if (r.parentElement.children.length > 1) { r.remove(); changed(); }
  });
  draw();
  r.rule = () => {
    const k = select.value;
    if (k === 'public') return { public: true };
    const v = Object.fromEntries([...fields.querySelectorAll('[data-field]')]
      .map((i) => [i.dataset.field, i.value.trim()]).filter(([, x]) => x !== ''));
    if (k === 'allow') return { allow: (v.accounts || '').split(/\s+/).filter(Boolean) };
    if (v.token_ids !== undefined) v.token_ids = v.token_ids.split(',').map((s) => s.trim()).filter(Boolean);
    return { [k]: v };
  };
  return r;
}
