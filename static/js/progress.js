// Moves a progress bar ([data-progress]) without reloading: polls its JSON status and
// reloads the page when the status changes. Without JavaScript the page refreshes itself.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress]");
  if (!box) { return; }
  var bar = box.querySelector("[data-progress-bar]");
  var percent = box.querySelector("[data-progress-percent]");
  var processed = box.querySelector("[data-progress-processed]");
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);
  function poll() {
    fetch(box.dataset.statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (bar) { bar.value = data.percent; }
        if (percent) { percent.textContent = data.percent; }
        if (processed && data.processed !== undefined) { processed.textContent = format.format(data.processed); }
        if (data.status !== box.dataset.status) {
          window.location.assign(box.dataset.pageUrl);
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
