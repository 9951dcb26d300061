// The strategy list: ask before deleting (a strategy a run used is hidden
// instead, but either way it leaves every list).
for (const form of document.querySelectorAll("form.delete-strategy")) {
  form.addEventListener("submit", (event) => {
    const key = form.dataset.key;
    if (!window.confirm(`Delete the strategy ${key}? It disappears from every list.`)) {
      event.preventDefault();
    }
  });
}
