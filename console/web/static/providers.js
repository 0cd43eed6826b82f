// Settings page, model providers: save (PUT /api/v1/model-providers/NAME),
// test the connection (POST …/NAME/test), edit (fills the form from the
// row) and delete (DELETE …/NAME), with the session and the page's CSRF
// token. Server text is only ever set with textContent.
(function () {
  'use strict';

  var form = document.getElementById('provider-form');
  if (!form) {
    return;
  }
  var status = document.getElementById('provider-status');

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle('notice-error', !!isError);
  }

  var call = window.ConvoSphere.api;


  function values() {
    var name = form.elements.name.value.trim();
    return {
      name: name,
      body: {
        api_type: form.elements.api_type.value,
        base_url: form.elements.base_url.value.trim(),
        api_version: form.elements.api_version.value.trim(),
        models: form.elements.models.value.split('\n').map(function (m) { return m.trim(); }).filter(Boolean),
        api_key: form.elements.api_key.value
      }
    };
  }

  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var v = values();
    if (!v.name) {
      say('Name the provider first.', true);
      return;
    }
    say('Saving…');
    try {
      await call('PUT', '/api/v1/model-providers/' + encodeURIComponent(v.name), v.body);
      say('Saved. Reloading…');
      window.location.reload();
    } catch (e) {
      say(e.message, true);
    }
  });

  document.getElementById('provider-test').addEventListener('click', async function () {
    var v = values();
    if (!v.name) {
      say('Name the provider first.', true);
      return;
    }
    say('Asking the provider for its models…');
    try {
      var res = await call('POST', '/api/v1/model-providers/' + encodeURIComponent(v.name) + '/test', v.body);
      var models = res.models || [];
      say('Connected: ' + models.length + ' model' + (models.length === 1 ? '' : 's') + (models.length ? ' (' + models.slice(0, 8).join(', ') + (models.length > 8 ? ', …' : '') + ')' : '') + '.');
    } catch (e) {
      say(e.message, true);
    }
  });

  document.querySelectorAll('tr.provider').forEach(function (row) {
    var name = row.getAttribute('data-provider');
    row.querySelector('[data-provider-edit]').addEventListener('click', function () {
      form.elements.name.value = name;
      form.elements.api_type.value = row.getAttribute('data-api-type') || 'openai';
      form.elements.base_url.value = row.getAttribute('data-base-url') || '';
      form.elements.api_version.value = row.getAttribute('data-api-version') || '';
      form.elements.models.value = row.getAttribute('data-models') || '';
      form.elements.api_key.value = '';
      form.elements.name.focus();
      say('Editing ' + name + ': an empty API key keeps the stored one.');
    });
    row.querySelector('[data-provider-delete]').addEventListener('click', async function () {
      if (!window.confirm('Delete the model provider ' + name + '? Assistants using its models will fail until they are changed.')) {
        return;
      }
      try {
        await call('DELETE', '/api/v1/model-providers/' + encodeURIComponent(name));
        row.remove();
        say('Deleted ' + name + '.');
      } catch (e) {
        say(e.message, true);
      }
    });
  });
})();
