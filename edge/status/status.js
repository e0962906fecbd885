// swarmgate status page: fetch the page's body again every few seconds and
// swap it in. The server renders (and escapes) all of it; this script adds
// no markup of its own. Refreshing pauses while the tab is hidden or the
// box is unticked.
(function () {
  'use strict';
  var main = document.getElementById('status');
  var note = document.getElementById('refresh-note');
  var auto = document.getElementById('auto');
  var every = (Number(main.dataset.refresh) || 3) * 1000;
  var timer = 0;

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, every);
  }

  function refresh() {
    if (document.hidden || !auto.checked) {
      schedule();
      return;
    }
    fetch(main.dataset.src, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) {
          throw new Error(r.status + ' ' + r.statusText);
        }
        return r.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        note.textContent = '· updated ' + new Date().toLocaleTimeString();
        note.className = '';
      })
      .catch(function (err) {
        note.textContent = '· refresh failed (' + err.message + '); showing the last answer';
        note.className = 'bad';
      })
      .finally(schedule);
  }

  auto.addEventListener('change', function () {
    if (auto.checked) {
      refresh();
    }
  });
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && auto.checked) {
      refresh();
    }
  });
  schedule();
})();
