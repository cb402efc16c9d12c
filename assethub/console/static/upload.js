// Asset Hub console: the upload page. Files (and folders) are listed with their destination,
// checked against the server's limit before anything is sent, then sent a few at a time with
// progress (window.assethub.send: XHR with the CSRF header) into one upload session, which is
// committed once with the message when every file has arrived (or aborted when one failed).
(function () {
  "use strict";

  function human(n) {
    if (n < 1024) return n + " B";
    const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = n;
    for (const u of units) {
      v /= 1024;
      if (v < 1024 || u === "PiB") return v.toFixed(1) + " " + u;
    }
    return n + " B";
  }

  function encodePath(p) {
    return p.split("/").map(encodeURIComponent).join("/");
  }

  function setup(form) {
    const limit = parseInt(form.dataset.limit, 10);
    const parallel = parseInt(form.dataset.parallel || "4", 10);
    const files = form.querySelector("#up-files");
    const folder = form.querySelector("#up-folder");
    const prefix = form.querySelector("#up-prefix");
    const message = form.querySelector("#up-message");
    const branch = form.querySelector("#up-branch");
    const sendButton = form.querySelector("#up-send");
    const table = document.getElementById("up-rows");
    const body = table.querySelector("tbody");
    const status = document.getElementById("up-status");
    let items = []; // {file, rel, row, bar, state}
    let busy = false;

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("error-text", !!isError);
    }

    function destination(rel) {
      const p = prefix.value.trim().replace(/^\/+|\/+$/g, "");
      return p ? p + "/" + rel : rel;
    }

    function redraw() {
      body.textContent = "";
      items.forEach(function (it) {
        const tr = document.createElement("tr");
        const name = document.createElement("td");
        name.className = "mono";
        name.textContent = destination(it.rel);
        const size = document.createElement("td");
        size.className = "num";
        size.textContent = human(it.file.size);
        const prog = document.createElement("td");
        const bar = document.createElement("progress");
        bar.max = 100;
        bar.value = 0;
        bar.setAttribute("aria-label", "Progress of " + destination(it.rel));
        const pct = document.createElement("span");
        pct.className = "pct";
        pct.textContent = "0 %";
        prog.append(bar, " ", pct);
        const state = document.createElement("td");
        state.className = "state";
        if (it.file.size > limit) {
          state.textContent = "too large: over the " + human(limit) + " limit";
          state.classList.add("error-text");
          tr.classList.add("refused");
        } else {
          state.textContent = "ready";
        }
        tr.append(name, size, prog, state);
        body.append(tr);
        it.row = tr; it.bar = bar; it.pct = pct; it.state = state;
      });
      table.hidden = items.length === 0;
    }

    function add(list, relative) {
      Array.from(list).forEach(function (f) {
        const rel = relative && f.webkitRelativePath ? f.webkitRelativePath : f.name;
        items = items.filter(function (it) { return it.rel !== rel; });
        items.push({ file: f, rel: rel });
      });
      redraw();
      const over = items.filter(function (it) { return it.file.size > limit; });
      if (over.length) {
        say(over.length + " file(s) over the " + human(limit) + " limit: they cannot be sent; clear the list and choose again.", true);
      } else {
        say(items.length + " file(s) ready.");
      }
    }

    files.addEventListener("change", function () { add(files.files, false); files.value = ""; });
    folder.addEventListener("change", function () { add(folder.files, true); folder.value = ""; });
    prefix.addEventListener("input", function () { if (!busy) redraw(); });
    form.querySelector("#up-clear").addEventListener("click", function () {
      if (busy) return;
      items = [];
      redraw();
      say("");
    });

    function mark(it, text, cls) {
      it.state.textContent = text;
      it.state.className = "state " + (cls || "");
    }

    async function run() {
      const msg = message.value.trim();
      if (!items.length) { say("Choose files or a folder first.", true); return; }
      if (!msg) { say("A commit needs a message.", true); message.focus(); return; }
      const over = items.filter(function (it) { return it.file.size > limit; });
      if (over.length) {
        say("Not sent: " + over.map(function (it) { return it.rel; }).join(", ") +
            " over the " + human(limit) + " limit.", true);
        return;
      }
      busy = true;
      sendButton.disabled = true;
      const target = branch ? branch.value : "main";
      let upload;
      try {
        upload = await window.assethub.post(form.dataset.start, { branch: target });
      } catch (e) {
        say("Could not start the upload: " + e.message, true);
        busy = false; sendButton.disabled = false;
        return;
      }
      const base = form.dataset.base + "/" + encodeURIComponent(upload.upload_id);
      say("Sending " + items.length + " file(s)…");
      const queue = items.slice();
      let failed = 0;
      async function worker() {
        for (;;) {
          const it = queue.shift();
          if (!it) return;
          mark(it, "sending");
          try {
            await window.assethub.send("PUT", base + "/files/" + encodePath(destination(it.rel)), it.file,
              function (loaded, total) {
                const p = total ? Math.floor((loaded * 100) / total) : 0;
                it.bar.value = p;
                it.pct.textContent = p + " %";
              });
            it.bar.value = 100;
            it.pct.textContent = "100 %";
            mark(it, "sent", "ok");
          } catch (e) {
            failed += 1;
            mark(it, "failed: " + e.message, "error-text");
          }
        }
      }
      const workers = [];
      for (let i = 0; i < Math.max(1, parallel); i++) workers.push(worker());
      await Promise.all(workers);
      if (failed) {
        try { await window.assethub.post(base + "/abort", {}); } catch (e) { /* already gone */ }
        say(failed + " file(s) failed: nothing was committed. Fix them and upload again.", true);
        busy = false; sendButton.disabled = false;
        return;
      }
      try {
        const done = await window.assethub.post(base + "/commit", { message: msg, branch: target });
        status.textContent = "Committed " + items.length + " file(s) as ";
        status.classList.remove("error-text");
        const link = document.createElement("a");
        link.href = done.history;
        link.className = "mono";
        link.textContent = done.commit.id.slice(0, 12);
        status.append(link, " on " + target + ". ");
        const more = document.createElement("a");
        more.href = done.history;
        more.textContent = "See the history";
        status.append(more);
        items = [];
      } catch (e) {
        say("The commit failed: " + e.message, true);
      }
      busy = false; sendButton.disabled = false;
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!busy) run();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("upload");
    if (form) setup(form);
  });
})();
