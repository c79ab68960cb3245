// Keeps the approvals list live (server-sent events). Everything works without it: the page
// is whole when loaded, and forms post normally.
(function () {
  "use strict";
  var list = document.getElementById("pending");
  if (!list || !window.EventSource) return;
  var status = document.getElementById("live");
  var held = null;
  function busy() {
    // Never replace a form someone is filling in: hold the update until they leave it.
    var active = document.activeElement;
    if (active && list.contains(active) && active.tagName !== "BODY") return true;
    var notes = list.querySelectorAll("textarea");
    for (var i = 0; i < notes.length; i++) if (notes[i].value.trim() !== "") return true;
    return false;
  }
  function apply(html) {
    if (busy()) { held = html; if (status) status.textContent = "New changes: they show when you leave the form."; return; }
    held = null;
    list.innerHTML = html;
    if (status) status.textContent = "Live: updated " + new Date().toLocaleTimeString();
  }
  list.addEventListener("focusout", function () { if (held !== null) setTimeout(function () { if (held !== null) apply(held); }, 0); });
  var source = new EventSource(list.getAttribute("data-live"));
  source.addEventListener("pending", function (event) { apply(event.data); });
  source.onerror = function () { if (status) status.textContent = "Live updates paused; reconnecting…"; };
  source.onopen = function () { if (status) status.textContent = "Live"; };
})();
