// phoneprov console: progressive enhancement only; every page works without it.
// The fleet filters apply as soon as a list changes; a revocation and a restart ask first.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => select.form.submit());
  }
  const questions = [
    ['form[action$="/certificates/revoke"]', "Revoke this certificate? Phones using it are refused at once."],
    ['form[action$="/restart"]', "Restart this phone? It restarts once no call is up."],
  ];
  for (const [selector, question] of questions) {
    for (const form of document.querySelectorAll(selector)) {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(question)) {
          event.preventDefault();
        }
      });
    }
  }
});
