// Moving around: the phone sidebar toggle, scrolling back through older messages, and
// opening a conversation at a search hit. Loaded without defer so the "js" class is set
// before the first paint (the phone layout hides the sidebar only when this script runs).
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // --- The sidebar behind a button on narrow screens.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest(".sidebar-toggle");
    if (!toggle) return;
    var layout = toggle.closest(".layout");
    var open = !layout.classList.contains("sidebar-open");
    layout.classList.toggle("sidebar-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var search = document.getElementById("search-q");
      if (search) search.focus();
    }
  });

  // --- Older pages replace the sentinel at the top of #messages: keep the reader's place.
  var keep = null;
  var quiet = null; // {list, live, timer} while old messages are going in
  document.addEventListener("htmx:beforeSwap", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.classList || !elt.classList.contains("older-messages")) return;
    var list = elt.closest(".messages");
    if (!list) return;
    keep = { list: list, fromBottom: list.scrollHeight - list.scrollTop };
    // Old messages coming back are not news: keep screen readers from reading them out.
    if (quiet) clearTimeout(quiet.timer);
    else quiet = { list: list, live: list.getAttribute("aria-live") };
    list.setAttribute("aria-live", "off");
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!keep) return;
    keep.list.scrollTop = keep.list.scrollHeight - keep.fromBottom;
    keep = null;
    quiet.timer = setTimeout(function () {
      if (quiet.live) quiet.list.setAttribute("aria-live", quiet.live);
      else quiet.list.removeAttribute("aria-live");
      quiet = null;
    }, 250);
    if (jumpTo) reachTarget();
  });

  // --- Opening a conversation at a message (#message-N from search): load back to it.
  var match = /^#message-(\d+)$/.exec(window.location.hash);
  var jumpTo = match ? parseInt(match[1], 10) : null;

  function showTarget(target) {
    target.classList.add("search-target");
    target.scrollIntoView({ block: "center" });
    jumpTo = null;
  }

  function aimSentinel(sentinel) {
    // Before htmx processes it: load everything back to the target in one request, now.
    var before = parseInt(sentinel.getAttribute("data-before"), 10);
    if (!(jumpTo < before)) return;
    var url = sentinel.getAttribute("hx-get");
    sentinel.setAttribute("hx-get", url + "&through=" + jumpTo);
    sentinel.setAttribute("hx-trigger", "load");
  }

  function reachTarget() {
    var target = document.getElementById("message-" + jumpTo);
    if (target) showTarget(target);
  }

  if (jumpTo) {
    document.addEventListener("DOMContentLoaded", function () {
      var sentinel = document.querySelector("#messages > .older-messages");
      if (!document.getElementById("message-" + jumpTo) && sentinel) aimSentinel(sentinel);
    });
    document.addEventListener("htmx:beforeProcessNode", function (event) {
      var elt = event.detail.elt;
      if (jumpTo && elt.classList && elt.classList.contains("older-messages")) aimSentinel(elt);
    });
    // After chat.js has scrolled to the newest message.
    window.addEventListener("load", reachTarget);
  }
})();
