// A button with data-copy="<id of an input>" copies that input's value to the
// clipboard and says so (data-copied); without the clipboard API it selects the text.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        button.textContent = button.dataset.copied;
      } catch (error) {
        // the text stays selected: Ctrl+C copies it
      }
    });
  });
});
