// Progressive enhancement of the recognize form: the plain form post works without this file.
(function () {
  "use strict";

  const form = document.getElementById("recognize-form");
  if (!form || !window.fetch || !window.FormData) return;

  const $ = (id) => document.getElementById(id);
  // Django's JavaScript catalog (/jsi18n/) defines these in the page's language; English if it did not load.
  const gettext = window.gettext || ((text) => text);
  const pgettext = window.pgettext || ((context, text) => text);
  const interpolate = window.interpolate || ((format, values) => format.replace(/%\(\w+\)s/g, (m) => values[m.slice(2, -2)]));
  const DOMAIN_NAMES = {
    animal: pgettext("domain", "animal"),
    bird: pgettext("domain", "bird"),
    plant: pgettext("domain", "plant"),
    other: pgettext("domain", "other"),
    all: pgettext("domain", "all"),
  };
  const domainName = (domain) => DOMAIN_NAMES[domain] || domain;
  const input = $("image");
  const dropzone = $("dropzone");
  const preview = $("preview");
  const fileName = $("file-name");
  const submitText = form.querySelector("#submit .button-text");
  const card = $("result-card");
  const errorBox = $("error");
  const empty = $("empty");
  const result = $("result");
  const list = $("predictions");
  const rowTemplate = $("prediction-template");
  const status = $("status");

  let chosen = null;
  let previewUrl = null;
  let inflight = null;
  let onScreen = null;  // the photo and the choices of the answer on screen

  // The choices a request is sent with; a refused request for the same photo puts them back as its answer had them.
  function choices() {
    const model = form.elements.model, explain = form.elements.explain;
    return { domain: form.elements.domain.value, model: model ? model.value : null, explain: explain ? explain.checked : null };
  }

  function restoreChoices(asked) {
    // Chromium's RadioNodeList ignores a value of "" ("All"): each radio is set instead.
    form.querySelectorAll("input[name=domain]").forEach((radio) => { radio.checked = radio.value === asked.domain; });
    if (asked.model !== null) form.elements.model.value = asked.model;
    if (asked.explain !== null) form.elements.explain.checked = asked.explain;
  }

  // We check for a photo ourselves, so dropped and pasted files count even where input.files cannot be set.
  form.noValidate = true;

  // As the server says a size and its limit (recognizer.preprocessing.size_texts): decimal units, as many decimals
  // as it takes for the two to read differently ("10.02 MB" over "10 MB"), trailing zeros dropped.
  function sizeText(count, digits) {
    const [value, unit] = count >= 1e6 ? [count / 1e6, "MB"] : [count / 1e3, "KB"];
    return value.toFixed(digits).replace(/\.?0+$/, "") + " " + unit;
  }

  function sizeTexts(size, limit) {
    for (const digits of [1, 2, 3]) {
      const texts = [sizeText(size, digits), sizeText(limit, digits)];
      if (texts[0] !== texts[1]) return texts;
    }
    return [size + " bytes", limit + " bytes"];
  }

  function percent(probability) {
    const rounded = Math.round(probability * 100);
    return rounded === 0 ? "<1%" : rounded + "%";
  }

  function showPreview(file, name) {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    dropzone.classList.remove("has-image");
    preview.hidden = true;
    preview.onload = () => {
      preview.hidden = false;
      dropzone.classList.add("has-image");
    };
    // A PDF or a broken file has nothing to show; the server's answer will say why.
    preview.onerror = () => { preview.hidden = true; };
    preview.src = previewUrl;
    fileName.textContent = name;
    fileName.hidden = false;
  }

  function choose(file, name) {
    if (!file) return;
    chosen = file;
    try {
      // Keeps the input in step with drops and pastes, so FormData(form) and a later no-JS fallback agree.
      const transfer = new DataTransfer();
      transfer.items.add(file);
      input.files = transfer.files;
    } catch (err) { /* older browsers: `chosen` is sent explicitly below */ }
    showPreview(file, name || file.name);
    recognize();
  }

  function setBusy(busy) {
    form.classList.toggle("is-busy", busy);
    card.setAttribute("aria-busy", busy ? "true" : "false");
    submitText.textContent = busy ? gettext("Recognizing…") : gettext("Recognize");
    if (busy) status.textContent = gettext("Recognizing the photo…");
  }

  // A refusal for another look at the photo on screen (a filter, a model, the heat map) keeps its answer, and the
  // form's choices go back to that answer's; a refusal for a new photo clears the old photo's answer.
  function showError(message, photo) {
    const keep = Boolean(onScreen) && photo === onScreen.photo;
    if (keep) restoreChoices(onScreen.asked);
    else onScreen = null;
    errorBox.textContent = message;
    errorBox.hidden = false;
    result.hidden = !keep;
    empty.hidden = true;
    status.textContent = "";  // the alert is announced itself
  }

  function row(prediction) {
    const item = rowTemplate.content.firstElementChild.cloneNode(true);
    const shown = percent(prediction.probability);
    item.dataset.probability = String(prediction.probability);
    item.querySelector(".label").textContent = prediction.label;
    const tag = item.querySelector(".domain");
    tag.textContent = domainName(prediction.domain);
    tag.classList.add("domain-" + prediction.domain);
    item.querySelector(".probability").textContent = shown;
    item.querySelector(".bar-fill").style.width = Math.round(prediction.probability * 100) + "%";
    const share = item.querySelector(".share");
    if (prediction.probability_in_domain !== null && prediction.probability_in_domain !== undefined) {
      share.textContent = interpolate(gettext("%(share)s among %(domain)s classes"),
        { share: percent(prediction.probability_in_domain), domain: domainName(prediction.domain) }, true);
      share.hidden = false;
    }
    return item;
  }

  function renderVerdict(body) {
    const verdict = body.verdict;
    $("verdict").className = "verdict" + (verdict ? " verdict-" + verdict.status : "");
    $("verdict-text").textContent = verdict ? verdict.explanation : "";
    $("verdict-domain").textContent = verdict
      ? interpolate(gettext("Domain: %(domain)s (%(sure)s sure)"),
        { domain: domainName(verdict.domain), sure: Math.round(verdict.domain_probability * 100) + "%" }, true)
      : "";
    $("domain-note").textContent = body.domain_note || "";
    $("domain-note").hidden = !body.domain_note;
    $("crop-note").textContent = body.crop_note || "";
    $("crop-note").hidden = !body.crop_note;
    $("allowed-note").textContent = body.allowed_classes
      ? interpolate(gettext("Only the classes on this site's allowed list were considered (%(count)s in all)."),
        { count: body.allowed_classes.count }, true)
      : "";
    $("allowed-note").hidden = !body.allowed_classes;
    const heatmap = $("heatmap");
    if (body.heatmap_png_base64) heatmap.src = "data:image/png;base64," + body.heatmap_png_base64;
    heatmap.hidden = !body.heatmap_png_base64;
  }

  function render(body, domain, photo, asked) {
    onScreen = { photo, asked };
    renderVerdict(body);
    list.replaceChildren(...body.predictions.map(row));
    $("model-info").textContent = body.model.name + " v" + body.model.version;
    $("timing").textContent = Math.round(body.timing_ms.total) + " ms";
    $("filter-used").textContent = domainName(domain || "all");
    // The no-JS page shows the photo here; with JS the preview beside the form already does.
    result.querySelectorAll(".result-photo").forEach((img) => img.remove());
    errorBox.hidden = true;
    empty.hidden = true;
    result.hidden = false;
    showFeedbackForm(body, photo);
    const top = body.predictions[0];
    status.textContent = body.verdict ? body.verdict.explanation
      : top ? interpolate(gettext("Top match: %(label)s, %(percent)s."), { label: top.label, percent: percent(top.probability) }, true)
      : gettext("No labels.");
    revealOnSmallScreens();
  }

  // "Wrong? Tell us what it is": posted for the prediction just shown, answered in place.
  const feedbackForm = $("feedback-form");
  let feedbackPhoto = null;  // the photo the form was last shown for

  function showFeedbackForm(body, photo) {
    if (!feedbackForm) return;
    feedbackForm.hidden = !body.id;
    feedbackForm.action = "/predictions/" + body.id + "/feedback";
    // A new answer for the same photo (another filter, model or heat map) keeps what was typed, and a sent
    // feedback stays sent; only a new photo starts the form afresh.
    if (photo !== feedbackPhoto) {
      feedbackForm.reset();
      feedbackForm.querySelectorAll("button").forEach((button) => { button.disabled = false; });
      $("feedback-status").textContent = "";
      feedbackPhoto = photo;
    }
    const slug = body.model.name.toLowerCase().replace(/[^a-z0-9_\s-]/g, "").replace(/[\s_-]+/g, "-").replace(/^-+|-+$/g, "");
    $("feedback-label").setAttribute("list", "labels-" + slug);
  }

  async function sendFeedback(event) {
    event.preventDefault();
    const said = $("feedback-status");
    const data = new FormData(feedbackForm);
    if (event.submitter && event.submitter.name) data.set(event.submitter.name, event.submitter.value);  // "Yes, it is right"
    try {
      const response = await fetch(feedbackForm.action, {
        method: "POST",
        body: data,
        headers: { "Accept": "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
        credentials: "same-origin",
      });
      const reply = await response.json().catch(() => null);
      if (response.ok) {
        said.textContent = gettext("Thank you: an expert will look at it.");
        feedbackForm.querySelectorAll("button").forEach((button) => { button.disabled = true; });
      } else {
        said.textContent = failureMessage(response, reply);
      }
    } catch (err) {
      said.textContent = gettext("Could not reach the server. Check your connection and try again.");
    }
  }

  if (feedbackForm) feedbackForm.addEventListener("submit", sendFeedback);

  function revealOnSmallScreens() {
    const box = card.getBoundingClientRect();
    if (box.top < 0 || box.bottom <= window.innerHeight) return;
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    card.scrollIntoView({ block: "nearest", behavior: smooth ? "smooth" : "auto" });
  }

  function failureMessage(response, body) {
    if (body && body.error && body.error.message) return body.error.message;
    if (response.status === 403) return gettext("Your session has expired. Reload the page and try again.");
    if (response.status === 413) return gettext("That file is too large to upload. Try a smaller photo.");
    const format = gettext("Something went wrong on the server (HTTP %(status)s). Try again in a moment.");
    return interpolate(format, { status: response.status }, true);
  }

  async function recognize() {
    if (!chosen) {
      showError(gettext("Choose a photo first."));
      return;
    }
    const maxBytes = Number(input.dataset.maxBytes);
    if (maxBytes && chosen.size > maxBytes) {  // refused before it is sent: on a phone the upload alone takes long
      const [size, limit] = sizeTexts(chosen.size, maxBytes);
      showError(interpolate(gettext("The file is %(size)s; the limit is %(limit)s. Send a smaller copy."),
        { size, limit }, true), chosen);
      return;
    }
    if (inflight) inflight.abort();
    const controller = new AbortController();
    inflight = controller;
    const photo = chosen;
    const data = new FormData(form);
    data.set("image", photo, photo.name || "pasted-image");
    const domain = data.get("domain") || "";
    const asked = choices();
    setBusy(true);
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: data,
        headers: {
          "Accept": "application/json",
          "X-CSRFToken": form.elements.csrfmiddlewaretoken.value,
        },
        credentials: "same-origin",
        signal: controller.signal,
      });
      const body = await response.json().catch(() => null);
      if (controller !== inflight) return;
      if (response.ok && body && Array.isArray(body.predictions)) render(body, domain, photo, asked);
      else showError(failureMessage(response, body), photo);
    } catch (err) {
      if (err.name === "AbortError") return;
      showError(gettext("Could not reach the server. Check your connection and try again."), photo);
    } finally {
      if (controller === inflight) {
        inflight = null;
        setBusy(false);
      }
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    recognize();
  });

  input.addEventListener("change", () => choose(input.files[0]));
  // Emptied as the chooser opens, so choosing the same file again (after editing it, or after an error) sends it
  // again: a file input fires "change" only when its value changes. A cancelled chooser keeps `chosen`.
  input.addEventListener("click", () => { input.value = ""; });

  form.addEventListener("change", (event) => {
    const name = event.target.name;
    if ((name === "domain" || name === "model" || name === "explain") && chosen) recognize();
  });

  // The whole zone opens the file chooser, not just its button.
  dropzone.addEventListener("click", (event) => {
    if (!event.target.closest("label, input")) input.click();
  });

  // A counter, because dragleave fires each time the pointer crosses into a child element.
  let dragDepth = 0;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  dropzone.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    dropzone.classList.add("is-dragover");
  });
  dropzone.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  dropzone.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropzone.classList.remove("is-dragover");
  });
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    dropzone.classList.remove("is-dragover");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) choose(files[0]);
  });
  // A photo dropped just outside the zone would otherwise replace the page with the image.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  // Switching the language reloads the page: the photo chosen (answered, on its way or refused) is carried over in
  // this browser's IndexedDB with the choices in the form, sent again from the new page, and deleted as it reads it.
  const CARRIED = "carried-photo";

  function carriedStore(mode, work) {
    return new Promise((resolve, reject) => {
      const opening = indexedDB.open("recognizer", 1);
      opening.onupgradeneeded = () => opening.result.createObjectStore("photos");
      opening.onerror = () => reject(opening.error);
      opening.onsuccess = () => {
        const db = opening.result;
        const transaction = db.transaction("photos", mode);
        const request = work(transaction.objectStore("photos"));
        transaction.oncomplete = () => { db.close(); resolve(request.result); };
        transaction.onerror = () => { db.close(); reject(transaction.error); };
      };
    });
  }

  const switcher = document.querySelector(".language-switcher");
  if (switcher && window.indexedDB) {
    switcher.addEventListener("submit", async (event) => {
      if (!chosen || switcher.dataset.carrying) return;
      event.preventDefault();
      const button = event.submitter;
      switcher.dataset.carrying = "1";
      try {
        await carriedStore("readwrite", (store) => store.put(
          { photo: chosen, name: fileName.textContent, asked: choices() }, CARRIED));
      } catch (err) { /* no storage (a private window): the page reloads without the answer, as without this */ }
      switcher.requestSubmit(button);
    });
    carriedStore("readwrite", (store) => {
      const reading = store.get(CARRIED);
      reading.onsuccess = () => store.delete(CARRIED);
      return reading;
    }).then((carried) => {
      if (!carried || chosen) return;
      restoreChoices(carried.asked);
      choose(carried.photo, carried.name);
    }).catch(() => {});
  }

  document.addEventListener("paste", (event) => {
    const items = Array.from((event.clipboardData && event.clipboardData.items) || []);
    const image = items.find((item) => item.kind === "file" && item.type.startsWith("image/"));
    if (!image) return;
    event.preventDefault();
    // Browsers name every pasted bitmap "image.png"; say where it came from instead.
    choose(image.getAsFile(), gettext("Pasted image"));
  });
})();
