// Loaded as a classic script right before the chart library, on the pages that
// draw charts. The page's Content-Security-Policy admits only <style> elements
// that carry its nonce. The chart library writes its global rules into the
// nonce'd sheet in the page head through the CSSOM, but it also creates <style>
// elements of its own (one per mode bar, and a map stylesheet when it loads):
// hand every <style> element created from script the page's nonce, so nothing
// is blocked and the policy stays strict. (The nonce is readable as a
// property, never as an attribute.)
(() => {
  const nonce = document.getElementById("plotly.js-style-global")?.nonce;
  if (!nonce) return;
  const createElement = document.createElement.bind(document);
  document.createElement = (tag, options) => {
    const element = createElement(tag, options);
    if (String(tag).toLowerCase() === "style") element.nonce = nonce;
    return element;
  };
})();
