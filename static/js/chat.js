// Chat page behaviour, kept out of templates so a strict CSP needs no inline script.
(function () {
  "use strict";

  function scrollToEnd() {
    var list = document.getElementById("messages");
    if (list) list.scrollTop = list.scrollHeight;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var stop = document.getElementById("stop-form");
      if (stop && stop.offsetParent !== null) stop.requestSubmit();
      return;
    }
    var box = event.target;
    if (box.id !== "composer-text") return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (box.value.trim()) box.form.requestSubmit();
    }
  });

  // Copy a reply's raw markdown.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy[data-copy-url]");
    if (!button) return;
    fetch(button.getAttribute("data-copy-url"), {credentials: "same-origin"})
      .then(function (response) { return response.text(); })
      .then(function (text) { return navigator.clipboard.writeText(text); })
      .then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      })
      .catch(function () { button.textContent = "Copy failed"; });
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  // The socket's state, for the connection notice and for tests.
  document.addEventListener("htmx:wsOpen", function (event) {
    event.detail.elt.setAttribute("data-ws-state", "open");
    // Replies this page shows as streaming may have finished while the socket was down.
    var ids = Array.prototype.map.call(
      document.querySelectorAll("#messages > .message[data-status=streaming]"),
      function (el) { return parseInt(el.getAttribute("data-id"), 10); });
    if (ids.length && event.detail.socketWrapper) {
      event.detail.socketWrapper.send(JSON.stringify({type: "sync", ids: ids}), event.detail.elt);
    }
  });
  document.addEventListener("htmx:wsClose", function (event) {
    event.detail.elt.setAttribute("data-ws-state", "closed");
  });

  document.addEventListener("htmx:wsAfterMessage", function () {
    scrollToEnd();
  });
  // Messages older than the context start are no longer sent to Claude: mark them.
  function markContext() {
    var gauge = document.getElementById("context-gauge");
    var start = gauge && parseInt(gauge.getAttribute("data-context-start"), 10);
    if (!start) return;
    document.querySelectorAll("#messages > .message[data-id]").forEach(function (el) {
      el.classList.toggle("out-of-context", parseInt(el.getAttribute("data-id"), 10) < start);
    });
  }
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "context-gauge") markContext();
  });

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "composer-text") {
      event.detail.target.focus();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    scrollToEnd();
    var box = document.getElementById("composer-text");
    if (box) box.focus();
  });
})();
