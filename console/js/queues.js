// Queues tab: filters, paged cards with live progress (GET .../process every few seconds), controls, create dialog.

import { ApiError } from "./api.js";
import { chunks, contactsFromCsv, parseNumbers, parseVariables } from "./audience.js";
import { clearErrors, count, dateTime, duration, h, sentence, showErrors } from "./dom.js";
import { RateTracker } from "./progress.js";

const $ = (selector) => document.querySelector(selector);
const PAGE_SIZE = 20;
const POLL_MS = 3000;
const LIVE = new Set(["PROCESSING", "SCHEDULED", "PAUSED"]);
const FINISHED = new Set(["COMPLETED", "CANCELLED", "FAILED"]);
const SEGMENTS = [
  // [counter, label]; sent includes delivered, which includes read: the bar shows each share once.
  ["read", "Read"],
  ["delivered", "Delivered"],
  ["sent", "Sent"],
  ["failed", "Failed"],
  ["optedOut", "Opted out"],
  ["skipped", "Skipped"],
  ["pending", "Pending"],
];
const CONTROLS = [
  // [action, label, statuses it applies to]
  ["process", "Process", ["DRAFT", "SCHEDULED"]],
  ["pause", "Pause", ["PROCESSING", "SCHEDULED"]],
  ["resume", "Resume", ["PAUSED"]],
  ["cancel", "Cancel", ["DRAFT", "SCHEDULED", "PROCESSING", "PAUSED"]],
  ["retry-failed", "Retry failed", ["PROCESSING", "PAUSED", "COMPLETED"]],
];
const MAX_INLINE_RECIPIENTS = 1000;

// Shares of the bar: read, delivered-not-read, sent-not-delivered, and the rest as counted.
export function segments(counters) {
  const c = { total: 0, pending: 0, sent: 0, delivered: 0, read: 0, failed: 0, optedOut: 0, skipped: 0, ...counters };
  return {
    read: c.read,
    delivered: Math.max(0, c.delivered - c.read),
    sent: Math.max(0, c.sent - c.delivered),
    failed: c.failed,
    optedOut: c.optedOut,
    skipped: c.skipped,
    pending: c.pending,
  };
}

function windowText(schedule) {
  const hours = schedule?.activeHours;
  if (!hours) return "any time";
  const days = hours.days?.length ? ` on ${hours.days.map((day) => sentence(day.toLowerCase())).join(", ")}` : "";
  return `${hours.start}–${hours.end}${days}`;
}

function audienceText(audience) {
  const parts = [];
  if (audience.recipientCount) parts.push(`${count(audience.recipientCount)} inline recipients`);
  if (audience.contactTags.length) parts.push(`contacts tagged ${audience.contactTags.join(", ")}`);
  return `Audience: ${parts.join(" and ") || "none"}`;
}

export class QueuesTab {
  constructor(app) {
    this.app = app;
    this.cards = new Map(); // queue id -> {queue, elements}
    this.nextToken = null;
    this.timer = null;
    this.rates = new RateTracker();
    this.form = $("#queue-form");
    this.dialog = $("#queue-dialog");
    $("#queue-add").addEventListener("click", () => this.openCreate());
    $("#queues-refresh").addEventListener("click", () => this.reload());
    $("#queues-more").addEventListener("click", () => this.loadPage());
    $("#queue-filters").addEventListener("change", () => this.reload());
    $("#queue-filters").addEventListener("submit", (event) => event.preventDefault());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    for (const radio of this.form.querySelectorAll("input[name=audienceMode]")) radio.addEventListener("change", () => this.showAudienceMode());
    $("#queue-numbers").addEventListener("input", () => this.countNumbers());
    $("#queue-csv").addEventListener("change", () => this.previewCsv());
  }

  show() {
    this.reload();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  message(text) {
    $("#queues-message").textContent = text;
  }

  async withApi(action, what) {
    try {
      return await action();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 401) this.message(`${what}: ${sentence(error.message)}.`);
      return undefined;
    }
  }

  async reload() {
    this.message("");
    await this.withApi(async () => {
      await this.app.accounts.load();
      this.fillAccountFilter();
    }, "Could not load the accounts");
    this.cards.clear();
    $("#queue-list").replaceChildren();
    this.nextToken = null;
    await this.loadPage();
  }

  fillAccountFilter() {
    const select = $("#filter-account");
    const chosen = select.value;
    select.replaceChildren(
      h("option", { value: "", text: "Any account" }),
      ...this.app.accounts.accounts.map((account) => h("option", { value: account.id, text: `${account.displayName} (${account.phoneNumber})` })),
    );
    select.value = this.app.accounts.accounts.some((account) => account.id === chosen) ? chosen : "";
  }

  async loadPage() {
    const filters = $("#queue-filters").elements;
    const page = await this.withApi(
      () => this.app.api.listQueues({ status: filters.status.value, accountId: filters.accountId.value, limit: PAGE_SIZE, nextToken: this.nextToken }),
      "Could not load the queues",
    );
    if (!page) return;
    const list = $("#queue-list");
    for (const queue of page.items) {
      if (this.cards.has(queue.id)) continue;
      const card = this.card(queue);
      this.cards.set(queue.id, card);
      list.append(card.root);
    }
    this.nextToken = page.nextToken;
    $("#queues-more").hidden = !page.nextToken;
    $("#queues-empty").hidden = this.cards.size > 0;
    // Listings carry counters as of the planner's last tick: read the live ones of what may still move.
    await Promise.all([...this.cards.values()].filter((card) => !card.polled && !FINISHED.has(card.queue.status)).map((card) => this.refreshCard(card)));
  }

  card(queue) {
    const titleId = `queue-title-${queue.id}`;
    const elements = {
      status: h("span", { class: "badge" }),
      percent: h("span", { class: "percent" }),
      bar: h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-labelledby": titleId }),
      legend: h("ul", { class: "legend", "aria-label": "Messages by state" }),
      rate: h("p", { class: "meta" }),
      schedule: h("p", { class: "meta" }),
      window: h("p", { class: "meta" }),
      errors: h("ul", { class: "errors", "aria-label": "Last errors" }),
      controls: h("div", { class: "controls", role: "group", "aria-label": `Controls of ${queue.name}` }),
      message: h("p", { class: "card-message", role: "alert" }),
    };
    const root = h(
      "article",
      { class: "queue-card", "data-queue-id": queue.id, "aria-labelledby": titleId },
      h("div", { class: "queue-head" }, h("h3", { id: titleId, text: queue.name }), elements.status),
      h(
        "p",
        { class: "meta" },
        "Priority ", h("strong", { text: String(queue.priority) }),
        " · Account ", h("strong", { text: this.app.accounts.name(queue.accountId) }),
        " · Template ", h("strong", { text: `${queue.template.name} (${queue.template.language})` }),
      ),
      h("div", { class: "queue-head" }, h("span", { class: "meta", text: audienceText(queue.audience) }), elements.percent),
      elements.bar,
      elements.legend,
      elements.rate,
      elements.schedule,
      elements.window,
      elements.errors,
      elements.message,
      elements.controls,
    );
    const card = { queue, root, elements, progress: null, polled: false };
    this.paint(card);
    return card;
  }

  // Draw the card from its queue and its latest progress (when it has been polled).
  paint(card) {
    const { queue, elements, progress } = card;
    const status = progress?.status ?? queue.status;
    const counters = progress?.counters ?? queue.counters;
    const percent = progress ? progress.percentDone : counters.total ? Math.round((10000 * (counters.total - counters.pending)) / counters.total) / 100 : 0;
    card.root.dataset.status = status;
    elements.status.className = `badge status-${status}`;
    elements.status.textContent = status;
    elements.percent.textContent = `${Math.floor(percent)}%`;
    elements.bar.setAttribute("aria-valuenow", String(percent));
    elements.bar.setAttribute("aria-valuetext", `${percent}% done: ${count(counters.total - counters.pending)} of ${count(counters.total)} settled`);
    const shares = segments(counters);
    const total = Object.values(shares).reduce((a, b) => a + b, 0);
    elements.bar.replaceChildren(
      ...SEGMENTS.filter(([name]) => name !== "pending" && shares[name] > 0).map(([name]) => {
        const span = h("span", { class: `seg-${name}` });
        span.style.setProperty("width", `${(100 * shares[name]) / (total || 1)}%`);
        return span;
      }),
    );
    elements.legend.replaceChildren(
      ...SEGMENTS.map(([name, label]) => h("li", {}, h("span", { class: `key key-${name}`, "aria-hidden": "true" }), `${label} ${count(name === "sent" ? counters.sent : counters[name])}`)),
    );

    const rate = card.rate;
    if (status === "PROCESSING") {
      elements.rate.textContent = `Rate ${rate?.rate ? `${rate.rate.toFixed(1)} msg/s` : "measuring…"} · ETA ${rate?.eta ? duration(rate.eta) : counters.pending ? "unknown" : "—"}`;
    } else {
      const when = progress?.completedAt || queue.completedAt;
      elements.rate.textContent = when ? `Finished ${dateTime(when)}` : progress?.startedAt || queue.startedAt ? `Started ${dateTime(progress?.startedAt || queue.startedAt)}` : "Not started";
    }
    const schedule = queue.schedule;
    elements.schedule.textContent = `Schedule: ${schedule.startAt ? `starts ${dateTime(schedule.startAt)}` : "starts when processed"} · time zone ${schedule.timezone} · window ${windowText(schedule)}`;
    // nextWindowAt / waitingForWindow: shown when the API reports them.
    const next = progress?.nextWindowAt;
    const waiting = progress?.waitingForWindow;
    elements.window.textContent = waiting
      ? `Waiting for the sending window${next ? `: it opens ${dateTime(next)}` : ""}.`
      : next
        ? `Next window opens ${dateTime(next)}.`
        : progress?.statusReason || queue.statusReason
          ? `Reason: ${progress?.statusReason || queue.statusReason}`
          : "";
    elements.window.hidden = !elements.window.textContent;
    const errors = progress?.lastErrors ?? [];
    elements.errors.replaceChildren(...errors.map((error) => h("li", { text: `${error.code}: ${error.message} (×${count(error.count)})` })));
    elements.errors.hidden = !errors.length;

    const wanted = CONTROLS.filter(([action, , statuses]) => statuses.includes(status) && (action !== "retry-failed" || counters.failed > 0));
    const current = [...elements.controls.children].map((button) => button.dataset.action).join();
    if (current !== wanted.map(([action]) => action).join()) {
      const focused = elements.controls.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      elements.controls.replaceChildren(
        ...wanted.map(([action, label]) =>
          h("button", {
            type: "button",
            class: `button small${action === "cancel" ? " link-danger" : action === "process" ? " primary" : ""}`,
            "data-action": action,
            "aria-label": `${label} ${queue.name}`,
            text: label,
            onclick: () => this.act(card, action, label),
          }),
        ),
      );
      // Keep keyboard users inside the card when the button they pressed is replaced.
      if (focused) (elements.controls.querySelector(`[data-action="${focused}"]`) || elements.controls.firstChild || card.root).focus?.();
    }
  }

  async refreshCard(card) {
    try {
      const progress = await this.app.api.progress(card.queue.id);
      const before = card.progress?.status ?? card.queue.status;
      card.progress = progress;
      card.polled = true;
      card.rate = this.rates.update(progress);
      if (before !== progress.status && FINISHED.has(progress.status) && before === "PROCESSING") {
        this.app.notify(`Queue ${card.queue.name} is ${progress.status.toLowerCase()}.`);
      }
      this.paint(card);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 404) {
        card.root.remove();
        this.cards.delete(card.queue.id);
      } else if (error.status !== 401) {
        card.elements.message.textContent = `Progress unavailable: ${sentence(error.message)}.`;
      }
    }
  }

  poll() {
    if (!this.app.api) return;
    const live = [...this.cards.values()].filter((card) => LIVE.has(card.progress?.status ?? card.queue.status));
    live.forEach((card) => this.refreshCard(card));
  }

  async act(card, action, label) {
    card.elements.message.textContent = "";
    try {
      const answer = await this.app.api.queueAction(card.queue.id, action);
      if (action === "retry-failed") {
        this.app.notify(`${card.queue.name}: ${count(answer.requeued)} failed messages queued again${answer.more ? "; more remain, press Retry failed again" : ""}.`);
      } else {
        this.app.notify(`${card.queue.name}: ${label.toLowerCase()} accepted.`);
        if (action === "resume" || action === "process") this.rates.forget(card.queue.id);
      }
      await this.refreshCard(card);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 401) card.elements.message.textContent = `${label} failed: ${sentence(error.message)}.`;
    }
  }

  // --- Create dialog

  showAudienceMode() {
    const mode = this.form.elements.audienceMode.value;
    for (const part of this.form.querySelectorAll("[data-audience]")) part.hidden = part.dataset.audience !== mode;
  }

  countNumbers() {
    const numbers = parseNumbers($("#queue-numbers").value);
    $("#queue-numbers-count").textContent = `${count(numbers.length)} numbers (at most 1,000; use contacts and tags for more)`;
  }

  async previewCsv() {
    const file = $("#queue-csv").files[0];
    if (!file) return;
    try {
      const contacts = contactsFromCsv(await file.text(), "");
      $("#queue-csv-summary").textContent = `${file.name}: ${count(contacts.length)} contacts. They are saved with the tag below, and the queue sends to that tag.`;
    } catch (error) {
      showErrors(this.form, [{ field: "contacts", message: error.message }]);
    }
  }

  async openCreate() {
    this.form.reset();
    clearErrors(this.form);
    this.showAudienceMode();
    this.countNumbers();
    await this.withApi(() => this.app.accounts.load(), "Could not load the accounts");
    $("#queue-account").replaceChildren(
      h("option", { value: "", text: "The business's default account" }),
      ...this.app.accounts.accounts.map((account) =>
        h("option", { value: account.id, text: `${account.displayName} (${account.phoneNumber})${account.status === "ACTIVE" ? "" : ` — ${account.status}`}` }),
      ),
    );
    const zones = $("#timezones");
    if (!zones.children.length && Intl.supportedValuesOf) zones.replaceChildren(...Intl.supportedValuesOf("timeZone").map((zone) => h("option", { value: zone })));
    const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "");
    $("#queue-csv-tag").value = `upload-${stamp}`;
    $("#queue-csv-summary").textContent = "The rows are saved as contacts with the tag below, and the queue sends to that tag.";
    this.dialog.showModal();
    $("#queue-name").focus();
  }

  // The queue body from the form, or {problems} found before asking the API (things only the console knows).
  async body() {
    const elements = this.form.elements;
    const problems = [];
    const { variables, problems: variableProblems } = parseVariables(elements.variables.value);
    variableProblems.forEach((message) => problems.push({ field: "variables", message }));
    const body = {
      name: elements.name.value.trim(),
      template: { name: elements.templateName.value.trim(), language: elements.templateLanguage.value.trim() },
      variables,
      priority: elements.priority.value === "" ? 5 : Number(elements.priority.value),
      maxAttempts: elements.maxAttempts.value === "" ? 3 : Number(elements.maxAttempts.value),
    };
    if (elements.accountId.value) body.accountId = elements.accountId.value;
    if (elements.contentSid.value.trim()) body.template.contentSid = elements.contentSid.value.trim();

    const mode = elements.audienceMode.value;
    let numbers = [];
    if (mode === "numbers") {
      numbers = parseNumbers(elements.numbers.value);
      if (!numbers.length) problems.push({ field: "audience.recipients", message: "add at least one phone number" });
      if (numbers.length > MAX_INLINE_RECIPIENTS) {
        problems.push({ field: "audience.recipients", message: `${count(numbers.length)} numbers: at most 1,000 can be pasted; upload them as a CSV of contacts instead` });
      }
      body.audience = { recipients: numbers.map((phoneNumber) => ({ phoneNumber })) };
    } else if (mode === "tags") {
      const tags = elements.tags.value.split(/[,\s]+/).filter(Boolean);
      if (!tags.length) problems.push({ field: "audience.contactTags", message: "add at least one tag" });
      body.audience = { contactTags: tags };
    } else {
      const file = elements.csv.files[0];
      const tag = elements.csvTag.value.trim();
      if (!file) problems.push({ field: "contacts", message: "choose a CSV file" });
      if (!tag) problems.push({ field: "csvTag", message: "a tag is needed: the queue sends to the contacts with this tag" });
      body.audience = { contactTags: [tag] };
      body.csvFile = file;
    }

    const schedule = {};
    if (elements.startAt.value) schedule.startAt = elements.startAt.value.length === 16 ? `${elements.startAt.value}:00` : elements.startAt.value;
    if (elements.timezone.value.trim()) schedule.timezone = elements.timezone.value.trim();
    const days = [...this.form.querySelectorAll("input[name=day]:checked")].map((box) => box.value);
    if (elements.windowStart.value || elements.windowEnd.value || days.length) {
      schedule.activeHours = { start: elements.windowStart.value, end: elements.windowEnd.value };
      if (days.length) schedule.activeHours.days = days;
    }
    if (Object.keys(schedule).length) body.schedule = schedule;
    return { body, problems, numbers };
  }

  // Saves the CSV rows as contacts (1,000 a call); returns the rejected rows as problems of the file field.
  async uploadContacts(file, tag) {
    let contacts;
    try {
      contacts = contactsFromCsv(await file.text(), tag);
    } catch (error) {
      return [{ field: "contacts", message: error.message }];
    }
    const rejected = [];
    let saved = 0;
    for (const [part, rows] of chunks(contacts).entries()) {
      const answer = await this.app.api.upsertContacts(rows);
      saved += answer.created + answer.updated;
      for (const row of answer.rejected) rejected.push({ ...row, index: row.index + part * 1000 });
    }
    if (!rejected.length) return [];
    const shown = rejected.slice(0, 5).map((row) => `row ${row.index + 2}${row.phoneNumber ? ` (${row.phoneNumber})` : ""}: ${row.message}`);
    const more = rejected.length > 5 ? `; and ${count(rejected.length - 5)} more` : "";
    return [{ field: "contacts", message: `${count(rejected.length)} rows were rejected (${count(saved)} saved; fix the file and create again): ${shown.join("; ")}${more}` }];
  }

  async create() {
    const submit = this.form.querySelector("[data-submit]");
    submit.disabled = true;
    let numbers = [];
    try {
      const built = await this.body();
      const { body, problems } = built;
      numbers = built.numbers;
      if (problems.length) {
        showErrors(this.form, problems);
        return;
      }
      const file = body.csvFile;
      delete body.csvFile;
      if (file) {
        const rejected = await this.uploadContacts(file, body.audience.contactTags[0]);
        if (rejected.length) {
          showErrors(this.form, rejected);
          return;
        }
      }
      const queue = await this.app.api.createQueue(body);
      this.dialog.close();
      this.app.notify(`Queue ${queue.name} was created as a draft: press Process on its card to send.`);
      await this.reload();
      const card = this.cards.get(queue.id);
      if (card) card.root.scrollIntoView({ block: "nearest" });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) {
        this.dialog.close();
        return;
      }
      showErrors(this.form, error.problems(), (field, message) => {
        const text = field && message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message;
        const line = /^audience\.recipients\[(\d+)\]/.exec(field || "");
        return line ? `line ${Number(line[1]) + 1} (${numbers[Number(line[1])] ?? "?"}): ${text}` : text;
      });
    } finally {
      submit.disabled = false;
    }
  }
}
