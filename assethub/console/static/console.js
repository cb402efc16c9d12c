// Asset Hub console: the only script of the console (no library, no build).
// - every fetch/XHR this script sends carries the session's CSRF token;
// - forms with data-confirm ask before they post;
// - elements with data-poll="URL" refresh from URL every data-interval seconds while the tab
//   is visible, until the fragment that comes back has no data-poll (a terminal state);
// - inputs with data-filter="SELECTOR" hide the matching items whose text does not contain
//   what is typed (substring, case-insensitive);
// - window.assethub.upload(...) sends files with progress (used by the upload page).
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    const question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      ev.preventDefault();
    }
  });

  document.addEventListener("focusin", function (ev) {
    if (ev.target.hasAttribute && ev.target.hasAttribute("data-select-on-focus")) {
      ev.target.select();
    }
  });

  function poll(el) {
    const url = el.getAttribute("data-poll");
    const seconds = parseFloat(el.getAttribute("data-interval") || "2");
    if (!url) return;
    const timer = window.setTimeout(async function tick() {
      if (document.hidden) {
        window.setTimeout(tick, seconds * 1000);
        return;
      }
      try {
        const r = await fetch(url, { headers: { "X-Requested-With": "assethub-console" } });
        if (r.redirected && new URL(r.url).pathname === "/signin") {
          // the session ended: stop, and say so instead of swapping the sign-in page in
          const note = document.createElement("p");
          note.className = "error-text";
          note.setAttribute("role", "alert");
          note.textContent = "Your session ended: sign in again to follow this.";
          el.replaceWith(note);
          return;
        }
        if (r.ok) {
          const html = await r.text();
          const box = document.createElement("div");
          box.innerHTML = html;
          const fresh = box.firstElementChild;
          if (fresh) {
            el.replaceWith(fresh);
            poll(fresh);
            return;
          }
        }
      } catch (e) {
        /* the server is away for a moment: try again */
      }
      window.setTimeout(tick, seconds * 1000);
    }, seconds * 1000);
    el.dataset.pollTimer = String(timer);
  }

  function filters() {
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      input.addEventListener("input", function () {
        const needle = input.value.toLowerCase();
        document.querySelectorAll(input.getAttribute("data-filter")).forEach(function (item) {
          item.hidden = needle !== "" && !item.textContent.toLowerCase().includes(needle);
        });
      });
    });
  }

  // Send one file with XHR (fetch has no upload progress); resolves with the response text.
  function send(method, url, body, onProgress, headers) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      Object.entries(headers || {}).forEach(function ([k, v]) { xhr.setRequestHeader(k, v); });
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total);
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.responseText);
        else reject(new Error(errorText(xhr.responseText) || ("HTTP " + xhr.status)));
      });
      xhr.addEventListener("error", function () { reject(new Error("network error")); });
      xhr.send(body);
    });
  }

  function errorText(text) {
    try { return JSON.parse(text).error.message; } catch (e) { return text.slice(0, 300); }
  }

  async function post(url, data) {
    const r = await fetch(url, {
      method: "POST",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      body: JSON.stringify(data || {}),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(errorText(text) || ("HTTP " + r.status));
    return text ? JSON.parse(text) : {};
  }

  window.assethub = { csrf: csrf, send: send, post: post };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    filters();
    document.querySelectorAll("[data-back]").forEach(function (a) {
      a.addEventListener("click", function (ev) { ev.preventDefault(); history.back(); });
    });
  });
})();
