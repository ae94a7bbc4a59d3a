// The try-it panel: asks AI-Core with the prompt as currently edited (unsaved)
// and, for a saved tutor, with its current version, side by side. Its words,
// in the staff's language, come in the panel's data attributes.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector(".try-it");
  if (!panel) return;
  const status = panel.querySelector(".try-it-status");
  const show = (box, answer) => {
    box.classList.toggle("try-it-error", Boolean(answer && answer.error));
    box.textContent = !answer ? "" : answer.error ? `${panel.dataset.noAnswer} ${answer.error}` : answer.content;
  };
  panel.querySelector(".try-it-send").addEventListener("click", async () => {
    const value = (id) => (document.getElementById(id) || { value: "" }).value;
    const body = new URLSearchParams({
      question: value("try-it-question"),
      system_prompt: value("id_system_prompt"),
      model_id: value("id_model_id"),
      knowledge_base_id: value("id_knowledge_base_id"),
      teaching_mode: value("id_teaching_mode"),
    });
    const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
    status.textContent = panel.dataset.asking;
    show(panel.querySelector(".try-it-draft"), null);
    show(panel.querySelector(".try-it-saved"), null);
    try {
      const response = await fetch(panel.dataset.url, {
        method: "POST",
        headers: { "X-CSRFToken": token },
        body,
        credentials: "same-origin",
      });
      const data = await response.json();
      if (!response.ok) {
        const errors = data.errors ? Object.entries(data.errors).map(([k, v]) => `${k}: ${v.join(" ")}`) : [];
        status.textContent = data.detail || errors.join("; ") || `${panel.dataset.failed} ${response.status}`;
        return;
      }
      status.textContent = panel.dataset.done;
      show(panel.querySelector(".try-it-draft"), data.draft);
      show(panel.querySelector(".try-it-saved"), data.saved);
    } catch (error) {
      status.textContent = `${panel.dataset.failed} ${error}`;
    }
  });
});
