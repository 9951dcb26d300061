// Run history: confirm a delete; compare only 2 to 4 ticked runs.
for (const form of document.querySelectorAll("form.delete-run")) {
  form.addEventListener("submit", (event) => {
    const name = form.querySelector("button").getAttribute("aria-label").replace("Delete ", "");
    if (!window.confirm(`Delete ${name} and its results? This cannot be undone.`)) {
      event.preventDefault();
    }
  });
}

const compare = document.getElementById("compare-button");
if (compare) {
  const boxes = [...document.querySelectorAll("input[name=run][form=compare-form]")];
  const sync = () => {
    const n = boxes.filter((b) => b.checked).length;
    compare.disabled = n < 2 || n > 4;
    compare.textContent = n ? `Compare ${n} selected` : "Compare selected";
  };
  boxes.forEach((b) => b.addEventListener("change", sync));
  sync();
}
