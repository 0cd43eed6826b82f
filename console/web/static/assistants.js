// Assistants pages. Everything works without this script (deleting goes
// through a confirmation section of the list, bindings are added one
// saved row at a time); with it:
// - Delete opens a confirmation dialog instead of reloading the list;
// - binding rows can be added and removed in place;
// - a form that came back with mistakes moves the focus to their summary.
// Names are only ever set with textContent.
(function () {
  'use strict';

  // Delete: a <dialog> with the list's confirmation form.
  var dialog = document.getElementById('delete-dialog');
  if (dialog && typeof dialog.showModal === 'function') {
    var form = document.getElementById('delete-dialog-form');
    var nameSlot = document.getElementById('delete-dialog-name');
    var opener = null;
    document.querySelectorAll('a.assistant-delete[data-delete-action]').forEach(function (link) {
      link.addEventListener('click', function (ev) {
        ev.preventDefault();
        opener = link;
        form.setAttribute('action', link.getAttribute('data-delete-action'));
        nameSlot.textContent = link.getAttribute('data-delete-name');
        dialog.showModal();
        var cancel = document.getElementById('delete-dialog-cancel');
        if (cancel) {
          cancel.focus();
        }
      });
    });
    document.getElementById('delete-dialog-cancel').addEventListener('click', function () {
      dialog.close();
    });
    dialog.addEventListener('close', function () {
      if (opener) {
        opener.focus();
      }
    });
    form.addEventListener('submit', function () {
      form.querySelectorAll('button').forEach(function (b) { b.disabled = true; });
    });
  }

  // Binding rows.
  var rows = document.getElementById('binding-rows');
  var addButton = document.getElementById('add-binding');
  if (rows && addButton) {
    var counter = rows.querySelectorAll('tr').length;

    var renumber = function () {
      rows.querySelectorAll('tr').forEach(function (row, i) {
        var n = String(i + 1);
        row.querySelectorAll('label, .binding-remove .visually-hidden').forEach(function (el) {
          el.textContent = el.textContent.replace(/\d+$/, n);
        });
      });
    };

    var clearRow = function (row) {
      row.classList.remove('field-invalid');
      row.querySelectorAll('.field-error').forEach(function (el) { el.remove(); });
      row.querySelectorAll('input').forEach(function (el) {
        el.value = '';
        el.removeAttribute('aria-invalid');
        el.removeAttribute('aria-describedby');
      });
      var platform = row.querySelector('select[name="binding_platform"]');
      if (platform) {
        platform.value = '';
      }
      var trigger = row.querySelector('select[name="binding_trigger"]');
      if (trigger) {
        trigger.value = 'thread';
      }
    };

    var wireRemove = function (row) {
      var button = row.querySelector('.binding-remove');
      button.hidden = false;
      button.addEventListener('click', function () {
        if (rows.querySelectorAll('tr').length > 1) {
          var next = row.nextElementSibling || row.previousElementSibling;
          row.remove();
          renumber();
          var focusable = next && next.querySelector('input');
          (focusable || addButton).focus();
        } else {
          clearRow(row);
          row.querySelector('select').focus();
        }
      });
    };

    rows.querySelectorAll('tr').forEach(wireRemove);
    addButton.hidden = false;
    addButton.addEventListener('click', function () {
      var last = rows.querySelector('tr:last-child');
      var row = last.cloneNode(true);
      var i = String(counter++);
      row.querySelectorAll('[id]').forEach(function (el) {
        el.id = el.id.replace(/-\d+$/, '-' + i);
      });
      row.querySelectorAll('label[for]').forEach(function (el) {
        el.setAttribute('for', el.getAttribute('for').replace(/-\d+$/, '-' + i));
      });
      clearRow(row);
      rows.appendChild(row);
      wireRemove(row);
      renumber();
      row.querySelector('select').focus();
    });
  }

  // A form with mistakes: focus the summary, which links to each field.
  var summary = document.getElementById('form-errors');
  if (summary) {
    summary.focus();
  }
})();
