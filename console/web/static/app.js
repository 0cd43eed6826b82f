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
