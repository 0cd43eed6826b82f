// Settings page: create an API token (POST /api/v1/tokens), shown once
// with a copy button, and revoke tokens (DELETE /api/v1/tokens/ID), with
// the session cookie and the page's CSRF token. Server text is only ever
// set with textContent.
(function () {
  'use strict';

  var page = document.querySelector('.settings-page');
  if (!page) {
    return;
  }
  var errorBox = document.getElementById('settings-error');

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: 'nearest' });
  }

  var call = window.ConvoSphere.api;


  // Create a token and show it once.
  var form = document.getElementById('token-form');
  var result = document.getElementById('token-result');
  var value = document.getElementById('token-value');
  var copyStatus = result.querySelector('.copy-status');
  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var button = form.querySelector('button[type="submit"]');
    errorBox.hidden = true;
    button.disabled = true;
    try {
      var res = await call('POST', '/api/v1/tokens', { name: form.elements.name.value });
      value.value = res.secret;
      copyStatus.textContent = '';
      addTokenRow(res.token);
      result.hidden = false;
      value.focus();
      value.select();
      form.reset();
    } catch (err) {
      showError(err.message);
      form.elements.name.focus();
    } finally {
      button.disabled = false;
    }
  });

  page.querySelectorAll('[data-copy]').forEach(function (button) {
    button.addEventListener('click', async function () {
      var input = document.getElementById(button.getAttribute('data-copy'));
      try {
        await navigator.clipboard.writeText(input.value);
        copyStatus.textContent = 'Copied to the clipboard.';
      } catch (e) {
        input.focus();
        input.select();
        copyStatus.textContent = 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
      }
    });
  });

  // formatTime writes a time as the server does: 2 Jan 2006 15:04 UTC.
  var months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function formatTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) {
      return iso;
    }
    function two(n) { return (n < 10 ? '0' : '') + n; }
    return d.getUTCDate() + ' ' + months[d.getUTCMonth()] + ' ' + d.getUTCFullYear() + ' ' +
      two(d.getUTCHours()) + ':' + two(d.getUTCMinutes()) + ' UTC';
  }

  // addTokenRow lists a new token under "Your tokens".
  function addTokenRow(token) {
    var wrap = document.getElementById('my-tokens');
    var row = document.createElement('tr');
    row.className = 'token';
    row.setAttribute('data-token-id', token.id);
    var name = document.createElement('th');
    name.scope = 'row';
    name.className = 'wrap token-name';
    name.textContent = token.name;
    row.appendChild(name);
    [token.user_name, formatTime(token.created_at), 'never'].forEach(function (text, i) {
      var td = document.createElement('td');
      if (i === 0) {
        td.className = 'token-owner';
      }
      if (i === 2) {
        var muted = document.createElement('span');
        muted.className = 'muted';
        muted.textContent = text;
        td.appendChild(muted);
      } else {
        td.textContent = text;
      }
      row.appendChild(td);
    });
    var actions = document.createElement('td');
    actions.className = 'actions';
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'button button-quiet button-danger';
    button.setAttribute('data-revoke', '');
    button.setAttribute('data-token-name', token.name);
    button.textContent = 'Revoke';
    var hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = ' ' + token.name;
    button.appendChild(hidden);
    actions.appendChild(button);
    row.appendChild(actions);
    wrap.querySelector('tbody').appendChild(row);
    wrap.hidden = false;
    document.getElementById('my-tokens-empty').hidden = true;
    wireRevoke(button);
  }

  // Revoke.
  page.querySelectorAll('[data-revoke]').forEach(wireRevoke);

  function wireRevoke(button) {
    button.addEventListener('click', async function () {
      var row = button.closest('tr');
      var id = row.getAttribute('data-token-id');
      var name = button.getAttribute('data-token-name');
      if (!window.confirm('Revoke the token "' + name + '"? Anything using it is refused from now on.')) {
        return;
      }
      errorBox.hidden = true;
      button.disabled = true;
      try {
        await call('DELETE', '/api/v1/tokens/' + encodeURIComponent(id));
        var wrap = row.closest('.table-wrap');
        row.remove();
        if (!wrap.querySelector('tbody tr')) {
          wrap.hidden = true;
          document.getElementById(wrap.id + '-empty').hidden = false;
        }
      } catch (err) {
        button.disabled = false;
        showError(name + ': ' + err.message);
      }
    });
  }
})();
