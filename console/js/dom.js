// Small DOM helpers: building elements without innerHTML (API text is never parsed as HTML), and form errors.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function sentence(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}

const integer = new Intl.NumberFormat("en-US");
export function count(value) {
  return integer.format(value ?? 0);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "unknown";
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${total % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function dateTime(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

// --- Form errors: an API error names its field as a dotted path ("audience.recipients[3].phoneNumber");
// each input carries the path it feeds in data-field, and the error goes next to the closest one.

let errorIds = 0;

function slotFor(target) {
  if (target._errorSlot) return target._errorSlot;
  const slot = h("p", { class: "field-error", id: `field-error-${(errorIds += 1)}` });
  if (target.tagName === "FIELDSET") {
    const legend = target.querySelector(":scope > legend");
    if (legend) legend.after(slot);
    else target.prepend(slot);
  } else {
    target.after(slot);
  }
  target._errorSlot = slot;
  return slot;
}

function describedBy(control, id, add) {
  const ids = new Set((control.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean));
  if (add) ids.add(id);
  else ids.delete(id);
  if (ids.size) control.setAttribute("aria-describedby", [...ids].join(" "));
  else control.removeAttribute("aria-describedby");
}

function controlsOf(target) {
  if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName)) return [target];
  return [...target.querySelectorAll("input, select, textarea")];
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) {
    if (slot.id) for (const control of form.querySelectorAll("[aria-describedby]")) describedBy(control, slot.id, false);
    slot.textContent = "";
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  const formError = form.querySelector("[data-form-error]");
  if (formError) formError.textContent = "";
}

// The element whose data-field is `path` or its closest parent path ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a").
export function targetFor(form, path) {
  let candidate = path;
  while (candidate) {
    const target = [...form.querySelectorAll("[data-field]")].find(
      (element) => element.dataset.field === candidate && !element.closest("[hidden]"),
    );
    if (target) return target;
    const cut = Math.max(candidate.lastIndexOf("."), candidate.lastIndexOf("["));
    candidate = cut > 0 ? candidate.slice(0, cut) : "";
  }
  return null;
}

// Show each problem next to its field; those naming no field (or a hidden one) go to the form's error line.
// `describe(field, message)` may reword a message for its field (e.g. a recipient index as a line number).
export function showErrors(form, problems, describe = (_field, message) => message) {
  clearErrors(form);
  const formError = form.querySelector("[data-form-error]");
  const general = [];
  let first = null;
  for (const { field, message } of problems) {
    const text = sentence(describe(field, message));
    const target = field ? targetFor(form, field) : null;
    if (!target) {
      general.push(text);
      continue;
    }
    const slot = slotFor(target);
    slot.textContent = slot.textContent ? `${slot.textContent} ${text}` : text;
    for (const control of controlsOf(target)) {
      control.setAttribute("aria-invalid", "true");
      describedBy(control, slot.id, true);
    }
    first = first || controlsOf(target)[0];
  }
  if (formError) formError.textContent = general.join(" ");
  if (first) first.focus();
  else if (formError && general.length) formError.scrollIntoView({ block: "nearest" });
}
