// Moves a progress bar ([data-progress]) without reloading: polls its JSON status and
// reloads the page when the status changes to one the page does not show. Statuses listed
// in data-live-statuses share one page (queued, waiting, running): between them only the
// status text changes, so the bar keeps moving up to its last value before the page turns.
// Without JavaScript the page refreshes itself.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress]");
  if (!box) { return; }
  var bar = box.querySelector("[data-progress-bar]");
  var percent = box.querySelector("[data-progress-percent]");
  var processed = box.querySelector("[data-progress-processed]");
  var statusText = box.querySelector("[data-progress-status]");
  var detail = box.querySelector("[data-progress-detail]");
  var live = (box.dataset.liveStatuses || "").split(" ").filter(Boolean);
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);
  function stays(status) {
    return live.indexOf(status) >= 0 && live.indexOf(box.dataset.status) >= 0;
  }
  function poll() {
    fetch(box.dataset.statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (bar) { bar.value = data.percent; }
        if (percent) { percent.textContent = data.percent; }
        if (processed && data.processed !== undefined) { processed.textContent = format.format(data.processed); }
        if (detail && data.detail_text) { detail.textContent = data.detail_text; }
        if (data.status !== box.dataset.status) {
          if (!stays(data.status)) { window.location.assign(box.dataset.pageUrl); return; }
          box.dataset.status = data.status;
          if (statusText && data.status_text) { statusText.textContent = data.status_text; }
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
