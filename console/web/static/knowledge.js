// Knowledge pages: uploads with a live progress bar. The upload form
// (which works without JavaScript too) is sent instead with
// XMLHttpRequest to POST /api/v1/knowledge-bases/KB/documents, with the
// page's CSRF token and Accept: text/event-stream. The first bar follows
// the bytes sent (upload progress events); the second follows the files
// as the server indexes them, one "file" event each, and each file's
// result is listed as it arrives. Server text is only ever set with
// textContent.
(function () {
  'use strict';

  var form = document.getElementById('upload-form');
  if (!form || !window.XMLHttpRequest || !window.FormData) {
    return;
  }
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute('content') : '';
  var input = document.getElementById('upload-files');
  var submit = document.getElementById('upload-submit');
  var box = document.getElementById('upload-progress');
  var bytesBar = document.getElementById('upload-bytes');
  var bytesText = document.getElementById('upload-bytes-text');
  var indexBar = document.getElementById('upload-indexing');
  var indexText = document.getElementById('upload-indexing-text');
  var status = document.getElementById('upload-status');
  var results = document.getElementById('upload-results');
  var doneLink = document.getElementById('upload-done');
  var kbBase = '/knowledge/' + encodeURIComponent(document.querySelector('[data-kb]').getAttribute('data-kb'));

  function size(n) {
    if (n < 1024) {
      return n + (n === 1 ? ' byte' : ' bytes');
    }
    var units = ['KB', 'MB', 'GB'];
    var i = -1;
    do {
      n /= 1024;
      i++;
    } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(1).replace(/\.0$/, '') + ' ' + units[i];
  }

  function say(text) {
    status.textContent = text;
  }

  function plural(n, word) {
    return n + ' ' + word + (n === 1 ? '' : 's');
  }

  // result adds one file's outcome to the list.
  function result(r) {
    var li = document.createElement('li');
    li.className = 'upload-result result-' + r.status;
    li.setAttribute('data-status', r.status);
    var badge = document.createElement('span');
    badge.className = 'badge ' + (r.status === 'indexed' ? 'badge-ok' : r.status === 'failed' ? 'badge-warn' : 'badge-off');
    badge.textContent = r.status;
    li.appendChild(badge);
    var name;
    if (r.document_id) {
      name = document.createElement('a');
      name.href = kbBase + '/documents/' + encodeURIComponent(r.document_id);
    } else {
      name = document.createElement('span');
    }
    name.textContent = r.name;
    li.appendChild(name);
    var detail = document.createElement('span');
    detail.className = 'muted';
    if (r.status === 'indexed') {
      detail.textContent = ' ' + plural(r.chunks, 'chunk');
      li.appendChild(detail);
    } else if (r.status === 'unchanged') {
      detail.textContent = ' the same content was already indexed';
      li.appendChild(detail);
    }
    if (r.error) {
      var why = document.createElement('p');
      why.className = 'document-error small';
      why.textContent = r.error.message;
      li.appendChild(why);
    }
    results.appendChild(li);
  }

  function describe(r) {
    if (r.status === 'indexed') {
      return r.name + ': indexed, ' + plural(r.chunks, 'chunk') + '.';
    }
    if (r.status === 'unchanged') {
      return r.name + ': unchanged.';
    }
    return r.name + ': failed: ' + (r.error ? r.error.message : 'unknown reason');
  }

  function finish() {
    submit.disabled = false;
    form.removeAttribute('aria-busy');
  }

  function handle(event, data) {
    switch (event) {
      case 'start':
        indexBar.max = Math.max(1, data.total);
        indexBar.value = 0;
        indexText.textContent = '0 of ' + plural(data.total, 'file');
        say('All files sent. Indexing ' + plural(data.total, 'file') + (data.files.length ? ', starting with ' + data.files[0] : '') + '…');
        pending = data.files;
        break;
      case 'file':
        indexBar.value = data.done;
        indexText.textContent = data.done + ' of ' + plural(data.total, 'file');
        result(data);
        var next = pending[data.done];
        say('File ' + data.done + ' of ' + data.total + ': ' + describe(data) + (next ? ' Indexing ' + next + '…' : ''));
        break;
      case 'done':
        var s = data.summary;
        say('Done: ' + s.indexed + ' indexed, ' + s.unchanged + ' unchanged, ' + s.failed + ' failed.');
        doneLink.hidden = false;
        finished = true;
        finish();
        form.reset();
        break;
      case 'error':
        say('The upload stopped: ' + (data.error ? data.error.message : 'unknown error') + ' The files listed above were processed.');
        finished = true;
        doneLink.hidden = false;
        finish();
        break;
    }
  }

  var pending = [];
  var finished = false;

  // parser returns a function that takes the response text so far and
  // handles each complete server-sent event once.
  function parser() {
    var seen = 0;
    var buffer = '';
    return function (text) {
      buffer += text.slice(seen);
      seen = text.length;
      var end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        var block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        var name = 'message';
        var data = '';
        block.split('\n').forEach(function (line) {
          if (line.indexOf('event: ') === 0) {
            name = line.slice(7);
          } else if (line.indexOf('data: ') === 0) {
            data += line.slice(6);
          }
        });
        if (!data) {
          continue; // a keep-alive comment
        }
        try {
          handle(name, JSON.parse(data));
        } catch (e) {
          say('The server sent an answer that could not be read: reload the page to see the documents.');
        }
      }
    };
  }

  form.addEventListener('submit', function (ev) {
    if (!input.files || input.files.length === 0) {
      return; // let the browser say the field is required
    }
    ev.preventDefault();
    var body = new FormData();
    var total = 0;
    for (var i = 0; i < input.files.length; i++) {
      body.append('file', input.files[i], input.files[i].name);
      total += input.files[i].size;
    }
    var count = input.files.length;
    results.textContent = '';
    doneLink.hidden = true;
    box.hidden = false;
    bytesBar.max = 1;
    bytesBar.value = 0;
    bytesText.textContent = '0 of ' + size(total);
    indexBar.max = count;
    indexBar.value = 0;
    indexText.textContent = 'waiting';
    pending = [];
    finished = false;
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    say('Sending ' + plural(count, 'file') + ' (' + size(total) + ')…');

    var xhr = new XMLHttpRequest();
    var feed = parser();
    var streaming = false;
    xhr.open('POST', form.getAttribute('data-api'));
    xhr.setRequestHeader('Accept', 'text/event-stream');
    xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.upload.addEventListener('progress', function (e) {
      if (e.lengthComputable && e.total > 0) {
        bytesBar.value = e.loaded / e.total;
        bytesText.textContent = size(e.loaded) + ' of ' + size(e.total);
      }
    });
    xhr.upload.addEventListener('load', function () {
      bytesBar.value = 1;
      bytesText.textContent = size(total) + ' sent';
      say('All files sent. Waiting for the server to index them…');
    });
    xhr.addEventListener('readystatechange', function () {
      if (xhr.readyState === 2) {
        streaming = xhr.status === 200 && (xhr.getResponseHeader('Content-Type') || '').indexOf('text/event-stream') === 0;
      }
    });
    xhr.addEventListener('progress', function () {
      if (streaming) {
        feed(xhr.responseText);
      }
    });
    xhr.addEventListener('load', function () {
      if (streaming) {
        feed(xhr.responseText);
        if (!finished) {
          say('The connection ended before every file was indexed: reload the page to see which documents were stored.');
          doneLink.hidden = false;
          finish();
        }
        return;
      }
      var message = 'The server answered with status ' + xhr.status + '.';
      try {
        var payload = JSON.parse(xhr.responseText);
        if (payload.error && payload.error.message) {
          message = payload.error.message;
        }
      } catch (e) { /* not JSON */ }
      if (xhr.status === 401) {
        message = 'Your session has expired: reload the page and sign in again.';
      }
      say('The upload was refused, nothing was stored: ' + message);
      finish();
    });
    xhr.addEventListener('error', function () {
      say('The upload failed: the server could not be reached. Check the connection and try again; reload the page to see which documents were stored.');
      finish();
    });
    xhr.addEventListener('abort', function () {
      say('The upload was cancelled.');
      finish();
    });
    xhr.send(body);
  });
})();
