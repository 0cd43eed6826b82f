// Users pages: invite a user (POST /api/v1/users), and on a user's page
// save the profile and role (PATCH /api/v1/users/ID), disable or enable
// the account, make a new invitation link (POST /api/v1/users/ID/invite)
// and link or unlink chat identities. Requests carry the session cookie
// and the page's CSRF token; server text is only ever set with
// textContent.
(function () {
  'use strict';


  var call = window.ConvoSphere.api;


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

  // Copy buttons: data-copy names the input whose value is copied.
  function wireCopyButtons(root) {
    root.querySelectorAll('[data-copy]').forEach(function (button) {
      button.addEventListener('click', async function () {
        var input = document.getElementById(button.getAttribute('data-copy'));
        var box = button.closest('.secret-box');
        var status = box ? box.querySelector('.copy-status') : null;
        var done = 'Copied to the clipboard.';
        try {
          await navigator.clipboard.writeText(input.value);
        } catch (e) {
          input.focus();
          input.select();
          done = 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
        }
        if (status) {
          status.textContent = done;
        }
      });
    });
  }

  // showSecret fills a secret box with a link and selects it.
  function showSecret(boxId, introId, inputId, intro, value) {
    var box = document.getElementById(boxId);
    document.getElementById(introId).textContent = intro;
    var input = document.getElementById(inputId);
    input.value = value;
    var status = box.querySelector('.copy-status');
    if (status) {
      status.textContent = '';
    }
    box.hidden = false;
    input.focus();
    input.select();
  }

  function linkOf(invitation) {
    return location.origin + invitation.path;
  }

  // The users list: the invite form.
  var usersPage = document.querySelector('.users-page');
  if (usersPage) {
    wireCopyButtons(usersPage);
    var form = document.getElementById('invite-form');
    var errorBox = document.getElementById('invite-error');
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var button = form.querySelector('button[type="submit"]');
      errorBox.hidden = true;
      button.disabled = true;
      try {
        var res = await call('POST', '/api/v1/users', {
          name: form.elements.name.value.trim(),
          display_name: form.elements.display_name.value,
          role: form.elements.role.value
        });
        showSecret('invite-result', 'invite-result-intro', 'invite-link',
          'Send this link to ' + res.user.name + ' (' + res.user.role + '). It works once, until ' +
          formatTime(res.invitation.expires_at) + ', and is not shown again.', linkOf(res.invitation));
        addUserRow(res.user);
        form.reset();
      } catch (err) {
        errorBox.textContent = err.message;
        errorBox.hidden = false;
        form.elements.name.focus();
      } finally {
        button.disabled = false;
      }
    });
  }

  // addUserRow puts a new user at the top of the list.
  function addUserRow(user) {
    var table = document.getElementById('users');
    if (!table) {
      location.reload();
      return;
    }
    var row = document.createElement('tr');
    row.className = 'user';
    row.setAttribute('data-user-id', user.id);
    var head = document.createElement('th');
    head.scope = 'row';
    var link = document.createElement('a');
    link.className = 'user-name';
    link.href = '/users/' + encodeURIComponent(user.id);
    link.textContent = user.name;
    head.appendChild(link);
    if (user.display_name) {
      var dn = document.createElement('p');
      dn.className = 'muted small user-display-name';
      dn.textContent = user.display_name;
      head.appendChild(dn);
    }
    row.appendChild(head);
    var cells = [user.role, null, 'none', formatTime(user.created_at), 'never'];
    cells.forEach(function (text, i) {
      var td = document.createElement('td');
      if (i === 1) {
        var badge = document.createElement('span');
        badge.className = 'badge badge-off';
        badge.setAttribute('data-status', user.status);
        badge.textContent = user.status;
        td.appendChild(badge);
      } else if (i === 2 || i === 4) {
        var muted = document.createElement('span');
        muted.className = 'muted';
        muted.textContent = text;
        td.appendChild(muted);
      } else {
        td.textContent = text;
      }
      row.appendChild(td);
    });
    var body = table.querySelector('tbody');
    body.insertBefore(row, body.firstChild);
  }

  // One user's page.
  var userPage = document.querySelector('.user-page');
  if (!userPage) {
    return;
  }
  wireCopyButtons(userPage);
  var userId = userPage.getAttribute('data-user-id');
  var userName = userPage.getAttribute('data-user-name');
  var base = '/api/v1/users/' + encodeURIComponent(userId);
  var pageError = document.getElementById('user-error');

  function showError(message) {
    pageError.textContent = message;
    pageError.hidden = false;
    pageError.scrollIntoView({ block: 'nearest' });
  }

  // Profile and role.
  var userForm = document.getElementById('user-form');
  userForm.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var button = userForm.querySelector('button[type="submit"]');
    var status = userForm.querySelector('.form-status');
    pageError.hidden = true;
    button.disabled = true;
    status.textContent = 'Saving…';
    try {
      var res = await call('PATCH', base, {
        display_name: userForm.elements.display_name.value,
        role: userForm.elements.role.value
      });
      status.textContent = 'Saved.';
      document.getElementById('user-title').textContent = res.user.display_name || res.user.name;
    } catch (err) {
      status.textContent = '';
      showError(err.message);
    } finally {
      button.disabled = false;
    }
  });

  // Disable or enable.
  userPage.querySelectorAll('[data-set-disabled]').forEach(function (button) {
    button.addEventListener('click', async function () {
      var disable = button.getAttribute('data-set-disabled') === 'true';
      if (disable && !window.confirm('Disable ' + userName + '? They are signed out at once and their API tokens stop working.')) {
        return;
      }
      pageError.hidden = true;
      button.disabled = true;
      try {
        await call('PATCH', base, { disabled: disable });
        location.reload();
      } catch (err) {
        button.disabled = false;
        showError(err.message);
      }
    });
  });

  // A new invitation or password reset link.
  var newLink = document.getElementById('new-link');
  if (newLink) {
    newLink.addEventListener('click', async function () {
      pageError.hidden = true;
      newLink.disabled = true;
      try {
        var res = await call('POST', base + '/invite', {});
        showSecret('link-result', 'link-result-intro', 'link-value',
          'Send this link to ' + res.user.name + '. It works once, until ' + formatTime(res.invitation.expires_at) +
          '; earlier links no longer work. It is not shown again.', linkOf(res.invitation));
      } catch (err) {
        showError(err.message);
      } finally {
        newLink.disabled = false;
      }
    });
  }

  // Chat identities: the hint follows the platform.
  var identityForm = document.getElementById('identity-form');
  var platformSelect = document.getElementById('identity-platform');
  var chatIdInput = document.getElementById('identity-chat-user-id');
  var hint = document.getElementById('identity-hint');
  platformSelect.addEventListener('change', function () {
    var option = platformSelect.options[platformSelect.selectedIndex];
    hint.textContent = option.getAttribute('data-hint');
    chatIdInput.placeholder = option.getAttribute('data-example');
  });
  identityForm.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var button = identityForm.querySelector('button[type="submit"]');
    pageError.hidden = true;
    button.disabled = true;
    try {
      await call('POST', base + '/identities', {
        platform: platformSelect.value,
        chat_user_id: chatIdInput.value.trim()
      });
      location.reload();
    } catch (err) {
      button.disabled = false;
      showError(err.message);
      chatIdInput.focus();
    }
  });
  userPage.querySelectorAll('[data-unlink]').forEach(function (button) {
    button.addEventListener('click', async function () {
      var row = button.closest('tr');
      var platform = row.getAttribute('data-platform');
      var chatId = row.getAttribute('data-chat-user-id');
      pageError.hidden = true;
      button.disabled = true;
      try {
        await call('DELETE', base + '/identities/' + encodeURIComponent(platform) + '/' + encodeURIComponent(chatId));
        var body = row.parentNode;
        row.remove();
        if (!body.querySelector('tr')) {
          document.getElementById('identities-wrap').hidden = true;
          document.getElementById('identities-empty').hidden = false;
        }
        chatIdInput.focus();
      } catch (err) {
        button.disabled = false;
        showError(err.message);
      }
    });
  });
})();
