// swarmgate status page: fetch the page's body again every few seconds and
// swap it in. The server renders (and escapes) all of it, filtered by the
// filter box; this script adds no markup of its own. Refreshing pauses
// while the tab is hidden or the box is unticked.
(function () {
  'use strict';
  var main = document.getElementById('status');
  var note = document.getElementById('refresh-note');
  var auto = document.getElementById('auto');
  var filter = document.getElementById('filter');
  var every = (Number(main.dataset.refresh) || 3) * 1000;
  var timer = 0;
  var typing = 0;
  // Answers can arrive out of order (a refresh, then a keystroke): only
  // the newest request's answer is shown.
  var asked = 0;
  var shown = 0;

  function query() {
    var q = filter.value.trim();
    return q ? '?q=' + encodeURIComponent(q) : '';
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(tick, every);
  }

  function tick() {
    if (document.hidden || !auto.checked) {
      schedule();
      return;
    }
    refresh();
  }

  function refresh() {
    var mine = ++asked;
    fetch(main.dataset.src + query(), { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) {
          throw new Error(r.status + ' ' + r.statusText);
        }
        return r.text();
      })
      .then(function (html) {
        if (mine < shown) {
          return;
        }
        shown = mine;
        main.innerHTML = html;
        note.textContent = '· updated ' + new Date().toLocaleTimeString();
        note.className = '';
      })
      .catch(function (err) {
        note.textContent = '· refresh failed (' + err.message + '); showing the last answer';
        note.className = 'bad';
      })
      .finally(function () {
        if (mine === asked) {
          schedule();
        }
      });
  }

  filter.addEventListener('input', function () {
    clearTimeout(typing);
    typing = setTimeout(function () {
      // The address keeps the filter, for a reload or a link.
      history.replaceState(null, '', location.pathname + query());
      refresh();
    }, 250);
  });
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
