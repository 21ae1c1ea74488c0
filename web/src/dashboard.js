// The creator's dashboard (/ when signed in): upload a video with tus-js-client (progress,
// pause and resume, resume after a reload by choosing the same file again), say who may watch
// with a form, and manage what was uploaded: live status and transcode progress, rename,
// change who may watch, copy the share link, delete.

import * as tus from 'tus-js-client';
import { ApiError, origin } from './api.js';
import { policyForm } from './policyform.js';
import { el, say } from './ui.js';

/** Size of one PATCH (origin buffers one S3 part per upload; any size works). */
const CHUNK = 8 * 1024 * 1024;

export async function dashboard(main, s) {
  const list = el('ul', { class: 'contents', id: 'contents', 'aria-live': 'polite' });
  const listStatus = el('p', { role: 'status' });
  main.replaceChildren(
    el('h1', {}, 'Your videos'),
    uploadForm(s, () => refresh()),
    el('h2', {}, 'Uploaded'),
    listStatus,
    list,
  );
  let timer = null;
  const refresh = async () => {
    clearTimeout(timer);
    let items;
    try {
      ({ items } = await origin.mine(s.token));
    } catch (e) {
      say(listStatus, `Your videos could not be listed: ${e.message}`, true);
      return;
    }
    say(listStatus, items.length ? '' : 'Nothing uploaded yet.');
    drawList(list, items, s, refresh);
    // Live while something is on its way.
    if (items.some((c) => c.status === 'uploading' || c.status === 'processing')) {
      timer = setTimeout(refresh, 1500);
    }
  };
  await refresh();
}

function uploadForm(s, uploaded) {
  const title = el('input', { id: 'new-title', type: 'text', required: '', maxlength: '200', autocomplete: 'off' });
  const file = el('input', { id: 'new-file', type: 'file', accept: 'video/*,audio/*' });
  const policy = policyForm({ public: true });
  const go = el('button', { type: 'submit', id: 'upload' }, 'Upload');
  const pause = el('button', { type: 'button', id: 'pause', class: 'secondary', hidden: '' }, 'Pause');
  const bar = el('progress', { id: 'upload-progress', max: '100', value: '0', hidden: '' });
  const status = el('p', { id: 'upload-status', role: 'status', 'aria-live': 'polite' });
  const titleError = el('span', { class: 'error field-error', role: 'alert' });
  const form = el('form', { class: 'upload', id: 'upload-form', novalidate: '' },
    el('h2', {}, 'New video'),
    el('div', { class: 'field' }, el('label', { for: title.id }, 'Title'), title, titleError),
    el('div', { class: 'field' }, el('label', { for: file.id }, 'File'), file),
    policy.node,
    el('div', { class: 'actions' }, go, pause),
    bar, status);
  let upload = null;
  let paused = false;
  pause.addEventListener('click', () => {
    if (!upload) return;
    if (paused) {
      upload.start();
      pause.textContent = 'Pause';
      say(status, 'Uploading…');
    } else {
      upload.abort();
      pause.textContent = 'Resume';
      say(status, 'Paused. Resume here, or reload and choose the same file to go on.');
    }
    paused = !paused;
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    policy.clearErrors();
    titleError.textContent = '';
    const f = file.files[0];
    if (!title.value.trim()) {
      titleError.textContent = 'Give the video a title.';
      title.focus();
      return;
    }
    if (!f) {
      say(status, 'Choose a file to upload.', true);
      return;
    }
    go.disabled = true;
    try {
      upload = await start(s, f, title.value.trim(), policy, {
        progress: (p) => {
          bar.hidden = false;
          bar.value = p;
          bar.textContent = `${p}%`;
          say(status, `Uploading… ${p}%`);
        },
        done: () => {
          say(status, 'Uploaded. Transcoding starts now.');
          pause.hidden = true;
          go.disabled = false;
          form.reset();
          // reset() changes the selects without an event: redraw their fields.
          form.querySelectorAll('.rule select').forEach((x) => x.dispatchEvent(new Event('change')));
          bar.hidden = true;
          uploaded();
        },
        failed: (msg) => {
          say(status, `The upload stopped: ${msg}`, true);
          go.disabled = false;
        },
      });
      if (upload) {
        pause.hidden = false;
        uploaded();
      } else {
        go.disabled = false;
      }
    } catch (e) {
      go.disabled = false;
      say(status, e.message, true);
    }
  });
  return form;
}

/** Resumes an earlier upload of this very file, else creates a content and uploads to it. */
async function start(s, file, title, policy, on) {
  const make = (contentId) => new tus.Upload(file, {
    endpoint: '/v1/uploads',
    chunkSize: CHUNK,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    headers: { authorization: `Bearer ${s.token}` },
    metadata: { content_id: contentId, filename: file.name, filetype: file.type || 'application/octet-stream' },
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => on.progress(Math.floor((sent / total) * 100)),
    onSuccess: () => on.done(),
    onError: (e) => on.failed(tusMessage(e)),
  });
  // The same file chosen again after a reload: go on where it stopped.
  const probe = make('');
  const previous = (await probe.findPreviousUploads()).filter((p) => p.metadata?.content_id);
  if (previous.length) {
    const upload = make(previous[0].metadata.content_id);
    upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
    return upload;
  }
  let created;
  try {
    created = await origin.create(s.token, title, policy.value());
  } catch (e) {
    if (e instanceof ApiError && e.status === 400 && /^policy/.test(e.message)) {
      policy.showError(e.message);
      return null;
    }
    throw new Error(`The video could not be created: ${e.message}`);
  }
  const upload = make(created.id);
  upload.start();
  return upload;
}

function tusMessage(e) {
  const body = e?.originalResponse?.getBody?.();
  try {
    return JSON.parse(body).message;
  } catch {
    return e?.message || String(e);
  }
}

function drawList(list, items, s, refresh) {
  list.replaceChildren();
  for (const c of items) {
    const progress = c.status === 'processing' ? ` ${Math.round(c.progress)}%` : '';
    const badge = el('span', { class: `badge ${c.status}`, 'data-status': c.status }, `${c.status}${progress}`);
    const link = el('a', { href: `/watch/${encodeURIComponent(c.id)}` }, c.title);
    const actions = el('div', { class: 'actions' });
    const li = el('li', { 'data-id': c.id }, el('div', { class: 'item' }, link, badge), actions);
    const share = button('Copy link', async () => {
      const url = `${location.origin}/watch/${c.id}`;
      try {
        await navigator.clipboard.writeText(url);
        share.textContent = 'Copied';
      } catch {
        // No clipboard permission: show it, selected, to copy by hand.
        const field = el('input', { type: 'text', readonly: '', value: url, 'aria-label': 'Share link' });
        actions.append(field);
        field.select();
      }
    });
    const rename = button('Rename', () => {
      const input = el('input', { type: 'text', value: c.title, maxlength: '200', 'aria-label': 'New title' });
      const err = el('span', { class: 'error', role: 'alert' });
      const save = button('Save', async () => {
        try {
          await origin.patch(s.token, c.id, { title: input.value.trim() });
          refresh();
        } catch (e) {
          err.textContent = e.message;
        }
      });
      actions.replaceChildren(input, save, err);
      input.focus();
    });
    const who = button('Who may watch', () => {
      const form = policyForm(c.policy);
      const save = button('Save', async () => {
        form.clearErrors();
        try {
          await origin.putPolicy(s.token, c.id, form.value());
          refresh();
        } catch (e) {
          form.showError(e.message);
        }
      });
      actions.replaceChildren(form.node, save);
    });
    const del = button('Delete', async () => {
      if (!window.confirm(`Delete "${c.title}"? Viewers lose it at once; this cannot be undone.`)) return;
      try {
        await origin.remove(s.token, c.id);
        refresh();
      } catch (e) {
        actions.append(el('span', { class: 'error', role: 'alert' }, e.message));
      }
    });
    del.classList.add('danger');
    actions.append(share, rename, who, del);
    list.append(li);
  }
}

function button(label, onClick) {
  const b = el('button', { type: 'button', class: 'secondary' }, label);
  b.addEventListener('click', onClick);
  return b;
}
