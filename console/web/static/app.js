// Theme switcher: sets data-theme on <html> and remembers the choice in a
// cookie that the server reads, so the next page is painted right at once.
// With no choice ("system"), the stylesheet follows prefers-color-scheme.
(function () {
  'use strict';
  var root = document.documentElement;
  var buttons = document.querySelectorAll('[data-theme-choice]');
  var secure = location.protocol === 'https:' ? '; Secure' : '';

  function apply(choice) {
    if (choice === 'light' || choice === 'dark') {
      root.setAttribute('data-theme', choice);
      document.cookie = 'cs_theme=' + choice + '; Path=/; Max-Age=31536000; SameSite=Lax' + secure;
    } else {
      choice = 'system';
      root.removeAttribute('data-theme');
      document.cookie = 'cs_theme=; Path=/; Max-Age=0; SameSite=Lax' + secure;
    }
    buttons.forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute('data-theme-choice') === choice));
    });
  }

  buttons.forEach(function (b) {
    b.addEventListener('click', function () { apply(b.getAttribute('data-theme-choice')); });
  });
})();

// ConvoSphere.api calls the console's JSON API from a page: the session
// cookie plus the page's CSRF token (<meta name="csrf-token">). It returns
// the decoded answer ({} for 204) or throws an Error whose message is the
// server's, in words (a 401 says the session expired).
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';

  async function api(method, url, body) {
    var res = await fetch(url, {
      method: method,
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    var payload = {};
    if (res.status !== 204) {
      try {
        payload = await res.json();
      } catch (e) {
        payload = {};
      }
    }
    if (!res.ok) {
      var message = (payload.error && payload.error.message) || ('The server answered with status ' + res.status + '.');
      if (res.status === 401) {
        message = 'Your session has expired: reload the page and sign in again.';
      }
      throw new Error(message);
    }
    return payload;
  }

  window.ConvoSphere = window.ConvoSphere || {};
  window.ConvoSphere.api = api;
})();
