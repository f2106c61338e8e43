// "Select all on this page" for the contact list. Progressive enhancement: without
// JavaScript the checkbox still works, the server then acts on the page's ids.
document.addEventListener("DOMContentLoaded", () => {
  const selectPage = document.getElementById("select-page");
  const selectMatching = document.getElementById("select-matching");
  if (!selectPage) return;
  const rows = () => Array.from(document.querySelectorAll("input.select-row"));

  selectPage.addEventListener("change", () => {
    rows().forEach((row) => { row.checked = selectPage.checked; });
    if (!selectPage.checked && selectMatching) selectMatching.checked = false;
  });
  rows().forEach((row) => row.addEventListener("change", () => {
    if (!row.checked) {
      selectPage.checked = false;
      if (selectMatching) selectMatching.checked = false;
    } else if (rows().every((r) => r.checked)) {
      selectPage.checked = true;
    }
  }));
  if (selectMatching) {
    selectMatching.addEventListener("change", () => {
      if (selectMatching.checked) {
        selectPage.checked = true;
        rows().forEach((row) => { row.checked = true; });
      }
    });
  }
});
