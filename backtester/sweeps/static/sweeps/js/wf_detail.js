// A stored walk-forward, drawn as the sweep page drew it when it finished.
import { renderWalkForward } from "./walkforward.js";

const data = JSON.parse(document.getElementById("walk-forward-data").textContent);
renderWalkForward(data.result, data.elapsed_s);
