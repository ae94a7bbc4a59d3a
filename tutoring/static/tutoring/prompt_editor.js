// Live character and line count under the tutor's system prompt.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".system-prompt-count").forEach((counter) => {
    const area = document.getElementById(counter.dataset.for);
    if (!area) return;
    const update = () => {
      counter.querySelector(".chars").textContent = area.value.length;
      counter.querySelector(".lines").textContent = area.value ? area.value.split("\n").length : 0;
    };
    area.addEventListener("input", update);
    update();
  });
});
