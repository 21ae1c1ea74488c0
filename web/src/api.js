// Talking to origin (same origin as the page) and to the edge (its URL comes from the page's
// <meta name="streamgate-edge">, which origin fills from its config). Errors keep the server's
// JSON `{error, message}` so the views can say what went wrong.

export const edgeUrl = (document.querySelector('meta[name="streamgate-edge"]')?.content || '')
  .replace(/\/$/, '');

/** An API error: HTTP status, stable code, server message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function call(url, { method = 'GET', token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach ${new URL(url, location.href).host}`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, json?.error, json?.message || text.slice(0, 200));
  }
  return json;
}

/** Origin's API (relative URLs: the page is served by origin). */
export const origin = {
  nonce: () => call('/v1/auth/nonce', { method: 'POST', body: {} }),
  siwe: (message, signature) => call('/v1/auth/siwe', { method: 'POST', body: { message, signature } }),
  siws: (message, signature, publicKey) => call('/v1/auth/siws', { method: 'POST', body: { message, signature, public_key: publicKey } }),
  logout: (token) => call('/v1/auth/logout', { method: 'POST', token }),
  content: (id, token) => call(`/v1/contents/${encodeURIComponent(id)}`, { token }),
  mine: (token) => call('/v1/contents?owner=me&limit=50', { token }),
  create: (token, title, policy) => call('/v1/contents', { method: 'POST', token, body: { title, policy } }),
  patch: (token, id, fields) => call(`/v1/contents/${encodeURIComponent(id)}`, { method: 'PATCH', token, body: fields }),
  putPolicy: (token, id, policy) => call(`/v1/contents/${encodeURIComponent(id)}/policy`, { method: 'PUT', token, body: { policy } }),
  remove: (token, id) => call(`/v1/contents/${encodeURIComponent(id)}`, { method: 'DELETE', token }),
};

/** The edge: a playback grant for the signed-in viewer. */
export const edge = {
  grant: (id, token) => call(`${edgeUrl}/v1/playback/${encodeURIComponent(id)}`, { token }),
};
