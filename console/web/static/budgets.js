// Budgets page (admins): save (POST /api/v1/budgets, or PUT
// /api/v1/budgets/ID when editing), edit (fills the form from the row)
// and delete (DELETE /api/v1/budgets/ID), with the session and the page's
// CSRF token. Server text is only ever set with textContent.
(function () {
  'use strict';

  var form = document.getElementById('budget-form');
  if (!form) {
    return;
  }
  var status = document.getElementById('budget-status');
  var call = window.ConvoSphere.api;

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle('notice-error', !!isError);
  }

  function number(v) {
    v = String(v).trim();
    return v === '' ? 0 : Number(v);
  }

  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var e = form.elements;
    var body = {
      scope: e.scope.value,
      target: e.target.value.trim(),
      period: e.period.value,
      max_tokens: Math.round(number(e.max_tokens.value)),
      max_cost_usd: number(e.max_cost_usd.value),
      action: e.action.value,
      fallback_model: e.action.value === 'fallback' ? e.fallback_model.value.trim() : ''
    };
    if (!body.target) {
      say('Say which ' + (body.scope === 'assistant' ? 'assistant' : body.scope) + ' the budget applies to.', true);
      e.target.focus();
      return;
    }
    var id = e.id.value;
    say('Saving…');
    try {
      if (id) {
        await call('PUT', '/api/v1/budgets/' + encodeURIComponent(id), body);
      } else {
        await call('POST', '/api/v1/budgets', body);
      }
      say('Saved. Reloading…');
      window.location.reload();
    } catch (err) {
      say(err.message, true);
    }
  });

  form.addEventListener('reset', function () {
    form.elements.id.value = '';
    say('');
  });

  document.querySelectorAll('tr.budget').forEach(function (row) {
    var id = row.getAttribute('data-budget');
    var edit = row.querySelector('[data-budget-edit]');
    var del = row.querySelector('[data-budget-delete]');
    if (edit) {
      edit.addEventListener('click', function () {
        var e = form.elements;
        e.id.value = id;
        e.scope.value = row.getAttribute('data-scope');
        e.target.value = row.getAttribute('data-target');
        e.period.value = row.getAttribute('data-period');
        e.max_tokens.value = row.getAttribute('data-max-tokens') === '0' ? '' : row.getAttribute('data-max-tokens');
        e.max_cost_usd.value = row.getAttribute('data-max-cost') === '0' ? '' : row.getAttribute('data-max-cost');
        e.action.value = row.getAttribute('data-action');
        e.fallback_model.value = row.getAttribute('data-fallback-model') || '';
        e.target.focus();
        say('Editing this budget: save to replace it, or clear the form to add a new one.');
      });
    }
    if (del) {
      del.addEventListener('click', async function () {
        if (!window.confirm('Delete this budget? Its turns are no longer limited.')) {
          return;
        }
        try {
          await call('DELETE', '/api/v1/budgets/' + encodeURIComponent(id));
          row.remove();
          say('Deleted.');
        } catch (err) {
          say(err.message, true);
        }
      });
    }
  });
})();
