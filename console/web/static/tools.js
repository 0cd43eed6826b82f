// Tools page: add, edit, test and delete MCP servers (PUT, POST …/test and
// DELETE /api/v1/tool-servers/NAME), enable or disable a tool (POST
// /api/v1/tools/NAME/enable or /disable) and approve or reject a pending
// tool approval (POST /api/v1/tool-approvals/ID), with the session cookie
// and the page's CSRF token. Server text is only ever set with textContent.
(function () {
  'use strict';

  var page = document.querySelector('.tools-page');
  if (!page) {
    return;
  }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute('content') : '';
  var errorBox = document.getElementById('tools-error');

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: 'nearest' });
  }

  function post(url, body) {
    return send('POST', url, body || {});
  }

  async function send(method, url, body) {
    var res = await fetch(url, {
      method: method,
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/json',
        'Accept': 'application/json',
        'X-CSRF-Token': csrf
      },
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
      var err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return { status: res.status, body: payload };
  }

  // MCP servers: the form adds one, or edits the one whose Edit was
  // pressed (its name then stays). Secrets are write-only: an edited
  // server's env and header names come back with empty values, and an
  // empty value keeps the stored one.
  var form = document.getElementById('server-form');
  if (form) {
    setUpServerForm(form);
  }

  function setUpServerForm(form) {
    var f = form.elements;
    var title = document.getElementById('server-form-title');
    var status = document.getElementById('server-status');
    var testButton = document.getElementById('server-test');
    var cancelButton = document.getElementById('server-cancel');
    var result = document.getElementById('server-test-result');
    var resultTitle = document.getElementById('server-test-title');
    var resultReason = document.getElementById('server-test-reason');
    var resultTools = document.getElementById('server-test-tools');
    var groups = form.querySelectorAll('.server-fields');
    var urlStored = document.getElementById('server-url-stored');
    var editing = null; // the row of the server being edited
    var nameRE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
    var envRE = /^[^=\s]+$/;
    var headerRE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle('notice-error', !!isError);
    }

    function showTransport() {
      var t = f.transport.value;
      groups.forEach(function (g) {
        g.hidden = g.getAttribute('data-transports').split(' ').indexOf(t) < 0;
      });
    }

    function fieldError(name, message) {
      var input = f[name];
      var box = document.getElementById('server-' + name + '-error');
      box.textContent = message || '';
      box.hidden = !message;
      if (message) {
        input.setAttribute('aria-invalid', 'true');
      } else {
        input.removeAttribute('aria-invalid');
      }
    }

    function clearErrors() {
      ['name', 'transport', 'command', 'args', 'env', 'url', 'headers'].forEach(function (n) { fieldError(n, ''); });
    }

    function lines(text) {
      return text.split('\n').map(function (l) { return l.trim(); }).filter(Boolean);
    }

    // pairs parses "KEY=value" or "Name: value" lines into an object, or
    // reports the first bad line on the field.
    function pairs(field, sep, nameRE, what) {
      var out = {};
      var raw = f[field].value.split('\n');
      for (var i = 0; i < raw.length; i++) {
        var line = raw[i].trim();
        if (!line) {
          continue;
        }
        var at = line.indexOf(sep);
        var key = at < 0 ? line : line.slice(0, at).trim();
        if (at < 0 || !nameRE.test(key)) {
          return { error: 'Line ' + (i + 1) + ': write ' + what + '.' };
        }
        if (Object.prototype.hasOwnProperty.call(out, key)) {
          return { error: 'Line ' + (i + 1) + ': ' + key + ' is already set above.' };
        }
        out[key] = line.slice(at + sep.length).trim();
      }
      return { value: out };
    }

    // values checks the form and returns the server's name and body, or
    // null after putting each error next to its field.
    function values() {
      clearErrors();
      var bad = null;
      function fail(field, message) {
        fieldError(field, message);
        bad = bad || field;
      }
      var name = f.name.value.trim();
      if (!name) {
        fail('name', 'Name the server.');
      } else if (!nameRE.test(name) || name.indexOf('__') >= 0 || name === 'builtin') {
        fail('name', 'Use up to 32 lower-case letters, digits, - or _, starting with a letter or digit (not “builtin”, no “__”).');
      }
      var t = f.transport.value;
      var body = { transport: t };
      if (t === 'stdio') {
        body.command = f.command.value.trim();
        body.args = lines(f.args.value);
        var env = pairs('env', '=', envRE, 'NAME=value');
        if (!body.command) {
          fail('command', 'A stdio server needs the command that starts it, such as npx or node.');
        }
        if (env.error) {
          fail('env', env.error);
        } else {
          body.env = env.value;
        }
      } else {
        body.url = f.url.value.trim();
        var headers = pairs('headers', ':', headerRE, 'Name: value, such as Authorization: Bearer …');
        var urlHidden = editing && editing.getAttribute('data-address-hidden') === 'true';
        if (!body.url && !urlHidden) {
          fail('url', 'An ' + t + ' server needs its URL.');
        } else if (body.url && !/^https?:\/\/[^\s/]+/i.test(body.url)) {
          fail('url', 'Write an http:// or https:// address, such as https://mcp.example.com/mcp.');
        }
        if (headers.error) {
          fail('headers', headers.error);
        } else {
          body.headers = headers.value;
        }
      }
      if (bad) {
        f[bad].focus();
        say('Fix the fields marked above.', true);
        return null;
      }
      return { name: name, body: body };
    }

    // showServerError puts an error of the API next to the field it is
    // about when it names one, else under the buttons.
    function showServerError(message) {
      var field = null;
      if (/server name|name ".*" is invalid/i.test(message)) {
        field = 'name';
      } else if (/needs a command/i.test(message)) {
        field = 'command';
      } else if (/needs a url|the url must/i.test(message)) {
        field = 'url';
      } else if (/^environment variable|^the environment variable/i.test(message)) {
        field = 'env';
      } else if (/^header|^the header/i.test(message)) {
        field = 'headers';
      } else if (/transport/i.test(message)) {
        field = 'transport';
      }
      if (field) {
        fieldError(field, message);
        f[field].focus();
        say('Fix the field marked above.', true);
      } else {
        say(message, true);
      }
    }

    function storedSecrets(id, keys, example) {
      var box = document.getElementById(id);
      box.textContent = '';
      box.hidden = keys.length === 0;
      if (!keys.length) {
        return;
      }
      box.appendChild(document.createTextNode('Stored: '));
      keys.forEach(function (k, i) {
        if (i) {
          box.appendChild(document.createTextNode(', '));
        }
        var code = document.createElement('code');
        code.textContent = k;
        box.appendChild(code);
        box.appendChild(document.createTextNode(' '));
        var badge = document.createElement('span');
        badge.className = 'badge badge-ok';
        badge.textContent = 'set';
        box.appendChild(badge);
      });
      box.appendChild(document.createTextNode('. Leave a value empty (' + example + ') to keep it; delete the line to remove it.'));
    }

    function hideResult() {
      result.hidden = true;
      resultTools.textContent = '';
      resultReason.textContent = '';
      resultReason.hidden = true;
    }

    function reset() {
      editing = null;
      form.reset();
      f.name.readOnly = false;
      title.textContent = 'Add an MCP server';
      cancelButton.hidden = true;
      f.url.placeholder = 'https://mcp.example.com/mcp';
      urlStored.hidden = true;
      storedSecrets('server-env-stored', [], '');
      storedSecrets('server-headers-stored', [], '');
      clearErrors();
      hideResult();
      showTransport();
    }

    function edit(row) {
      reset();
      editing = row;
      var name = row.getAttribute('data-server');
      var split = function (attr) { return (row.getAttribute(attr) || '').split('\n').filter(Boolean); };
      var envKeys = split('data-env-keys');
      var headerKeys = split('data-header-keys');
      title.textContent = 'Edit the MCP server ' + name;
      f.name.value = name;
      f.name.readOnly = true;
      f.transport.value = row.getAttribute('data-transport') || 'stdio';
      f.command.value = row.getAttribute('data-command') || '';
      f.args.value = row.getAttribute('data-args') || '';
      f.env.value = envKeys.map(function (k) { return k + '='; }).join('\n');
      f.url.value = row.getAttribute('data-address') || '';
      if (row.getAttribute('data-address-hidden') === 'true') {
        f.url.placeholder = row.getAttribute('data-address-redacted') || '';
        urlStored.hidden = false;
      }
      f.headers.value = headerKeys.map(function (k) { return k + ': '; }).join('\n');
      storedSecrets('server-env-stored', envKeys, 'NAME=');
      storedSecrets('server-headers-stored', headerKeys, 'Name:');
      cancelButton.hidden = false;
      showTransport();
      say('Editing ' + name + '.');
      form.scrollIntoView({ block: 'nearest' });
      f.transport.focus();
    }

    f.transport.addEventListener('change', function () {
      showTransport();
      hideResult();
    });
    cancelButton.addEventListener('click', function () {
      reset();
      say('');
      f.name.focus();
    });

    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var v = values();
      if (!v) {
        return;
      }
      say('Saving…');
      try {
        await send('PUT', '/api/v1/tool-servers/' + encodeURIComponent(v.name), v.body);
        say('Saved ' + v.name + '. Its tools appear below within seconds, to enable there. Reloading…');
        window.location.reload();
      } catch (err) {
        showServerError(err.message);
      }
    });

    if (testButton) {
      testButton.addEventListener('click', async function () {
        var v = values();
        if (!v) {
          return;
        }
        hideResult();
        testButton.disabled = true;
        say('Connecting to ' + v.name + ' and listing its tools…');
        try {
          var res = await post('/api/v1/tool-servers/' + encodeURIComponent(v.name) + '/test', v.body);
          var tools = res.body.tools || [];
          result.classList.remove('server-test-failed');
          resultTitle.textContent = 'Connected: ' + tools.length + (tools.length === 1 ? ' tool' : ' tools') + (tools.length ? '' : '.');
          tools.forEach(function (t) {
            var li = document.createElement('li');
            var code = document.createElement('code');
            code.textContent = t.name;
            li.appendChild(code);
            if (t.state) {
              var badge = document.createElement('span');
              badge.className = 'badge ' + (t.state === 'enabled' ? 'badge-ok' : t.state === 'changed' ? 'badge-warn' : 'badge-off');
              badge.textContent = t.state;
              li.appendChild(document.createTextNode(' '));
              li.appendChild(badge);
            }
            if (t.description) {
              var d = document.createElement('span');
              d.className = 'muted';
              d.textContent = t.description;
              li.appendChild(d);
            }
            resultTools.appendChild(li);
          });
          result.hidden = false;
          say('Connected to ' + v.name + ': ' + tools.length + (tools.length === 1 ? ' tool' : ' tools') + ' found. Save the server to use them.');
        } catch (err) {
          if (err.status === 502) {
            result.classList.add('server-test-failed');
            resultTitle.textContent = 'The connection failed';
            resultReason.textContent = err.message;
            resultReason.hidden = false;
            result.hidden = false;
            say('The connection to ' + v.name + ' failed: the reason is below.', true);
          } else {
            showServerError(err.message);
          }
        } finally {
          testButton.disabled = false;
        }
      });
    }

    document.querySelectorAll('#servers tr.server').forEach(function (row) {
      var name = row.getAttribute('data-server');
      row.querySelector('[data-server-edit]').addEventListener('click', function () {
        edit(row);
      });
      row.querySelector('[data-server-delete]').addEventListener('click', async function (ev) {
        var button = ev.currentTarget;
        if (!window.confirm('Delete the MCP server ' + name + '? Assistants can no longer call its tools.')) {
          return;
        }
        button.disabled = true;
        try {
          await send('DELETE', '/api/v1/tool-servers/' + encodeURIComponent(name));
          if (editing === row) {
            reset();
          }
          say('Deleted ' + name + '. Reloading…');
          window.location.reload();
        } catch (err) {
          button.disabled = false;
          showError(name + ': ' + err.message);
        }
      });
    });

    showTransport();
  }

  // Enable / disable.
  page.querySelectorAll('[data-tool-action]').forEach(function (button) {
    button.addEventListener('click', async function () {
      var action = button.getAttribute('data-tool-action');
      var name = button.getAttribute('data-tool-name');
      button.disabled = true;
      errorBox.hidden = true;
      try {
        await post('/api/v1/tools/' + encodeURIComponent(name) + '/' + action);
        location.reload();
      } catch (err) {
        button.disabled = false;
        showError(name + ': ' + err.message);
      }
    });
  });

  // Approve / reject.
  page.querySelectorAll('.approval-card').forEach(function (card) {
    var id = card.getAttribute('data-approval-id');
    var buttons = card.querySelectorAll('[data-decision]');
    var status = card.querySelector('.approval-status');
    buttons.forEach(function (button) {
      button.addEventListener('click', async function () {
        var decision = button.getAttribute('data-decision');
        buttons.forEach(function (b) { b.disabled = true; });
        status.textContent = decision === 'approve' ? 'Approving…' : 'Rejecting…';
        try {
          var res = await post('/api/v1/tool-approvals/' + encodeURIComponent(id), { decision: decision });
          var word = decision === 'approve' ? 'Approved' : 'Rejected';
          if (res.status === 202) {
            var platform = (res.body.approval && res.body.approval.platform) || 'the chat';
            status.textContent = word + '. The assistant goes on in ' + platform + '.';
          } else {
            status.textContent = word + '. The assistant went on with the conversation.';
          }
          card.querySelector('.approval-actions').remove();
          card.classList.add('approval-decided');
        } catch (err) {
          status.textContent = err.message;
          // A conflict (decided already) or a refusal will not change on
          // a retry; anything else may.
          if (err.status !== 409 && err.status !== 403 && err.status !== 404) {
            buttons.forEach(function (b) { b.disabled = false; });
          }
        }
      });
    });
  });
})();
