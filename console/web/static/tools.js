// Tools page: enable or disable a tool (POST /api/v1/tools/NAME/enable or
// /disable) and approve or reject a pending tool approval (POST
// /api/v1/tool-approvals/ID), with the session cookie and the page's CSRF
// token. Server text is only ever set with textContent.
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

  async function post(url, body) {
    var res = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/json',
        'Accept': 'application/json',
        'X-CSRF-Token': csrf
      },
      body: body ? JSON.stringify(body) : '{}'
    });
    var payload = {};
    try {
      payload = await res.json();
    } catch (e) {
      payload = {};
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
