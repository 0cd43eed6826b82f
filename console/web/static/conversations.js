// Conversations: times in the reader's own time zone (the server writes
// UTC), and a transcript opens the trace of the turn its address points at
// (/conversations/ID#turn-3). Text is only ever set with textContent.
(function () {
  'use strict';

  var page = document.querySelector('.conversations-page, .transcript-page');
  if (!page) {
    return;
  }

  var withSeconds = !!document.querySelector('.transcript-page');
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, {
      year: 'numeric', month: 'short', day: 'numeric',
      hour: '2-digit', minute: '2-digit', second: withSeconds ? '2-digit' : undefined
    });
  } catch (e) {
    format = null;
  }
  if (format) {
    page.querySelectorAll('time[datetime]').forEach(function (el) {
      var when = new Date(el.getAttribute('datetime'));
      if (isNaN(when.getTime())) {
        return;
      }
      el.title = el.textContent.trim();
      el.textContent = format.format(when);
    });
  }

  function openTarget() {
    if (!location.hash) {
      return;
    }
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (!target) {
      return;
    }
    var exchange = target.closest('.exchange');
    var trace = exchange && exchange.querySelector('details.trace');
    if (trace) {
      trace.open = true;
    }
  }
  openTarget();
  window.addEventListener('hashchange', openTarget);
})();
