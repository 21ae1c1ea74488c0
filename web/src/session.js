// The session: the JWT origin answers after sign-in, kept in sessionStorage.
//
// Why sessionStorage and not a cookie: origin's API takes the session as a Bearer header (the
// edge too, cross-origin), so a cookie would add CSRF exposure without removing the token from
// JavaScript's reach. sessionStorage lives as long as the tab (a reload keeps it, closing the
// tab forgets it) and is never sent anywhere by the browser on its own. What protects it from
// script injection is the Content-Security-Policy origin sends with the page: scripts only
// from the page's origin, no inline script, no eval. Sign-out revokes it at origin.

const KEY = 'streamgate.session';

export function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (s && s.token && Date.parse(s.expires_at) > Date.now() + 5000) return s;
  } catch {
    /* a corrupt entry is no session */
  }
  sessionStorage.removeItem(KEY);
  return null;
}

export function save(s) {
  sessionStorage.setItem(KEY, JSON.stringify({ token: s.token, subject: s.subject, expires_at: s.expires_at }));
}

export function clear() {
  sessionStorage.removeItem(KEY);
}
