// Accounts tab: summary cards, the accounts table and its actions, the create/edit dialog.

import { ApiError } from "./api.js";
import { clearErrors, count, dateTime, h, sentence, showErrors } from "./dom.js";

const $ = (selector) => document.querySelector(selector);
const CREDENTIAL_FIELDS = {
  sandbox: [],
  twilio: ["accountSid", "authToken", "messagingServiceSid"],
  meta: ["phoneNumberId", "wabaId", "accessToken", "appSecret"],
};
const RUNNING = new Set(["PROCESSING"]);

function sameDay(value, day) {
  if (!value) return false;
  const date = new Date(value);
  return date.getFullYear() === day.getFullYear() && date.getMonth() === day.getMonth() && date.getDate() === day.getDate();
}

export class AccountsTab {
  constructor(app) {
    this.app = app;
    this.accounts = [];
    this.accountsComplete = true;
    this.editing = null; // the account being edited, or null when creating
    this.form = $("#account-form");
    this.dialog = $("#account-dialog");
    $("#account-add").addEventListener("click", () => this.openCreate());
    $("#accounts-refresh").addEventListener("click", () => this.refresh());
    $("#account-provider").addEventListener("change", () => this.showProviderFields());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
  }

  // Accounts are few per business: the console reads them all (other tabs use them for names and filters).
  async load() {
    const { items, complete } = await this.app.api.listAccounts();
    this.accounts = items;
    this.accountsComplete = complete;
    return items;
  }

  name(accountId) {
    const account = this.accounts.find((candidate) => candidate.id === accountId);
    return account ? `${account.displayName} (${account.phoneNumber})` : accountId;
  }

  show() {
    this.refresh();
  }

  hide() {}

  message(text) {
    $("#accounts-message").textContent = text;
  }

  async refresh() {
    this.message("");
    try {
      const [, queues] = await Promise.all([this.load(), this.app.api.allQueues()]);
      this.render(queues);
    } catch (error) {
      if (error instanceof ApiError && error.status !== 401) this.message(`Could not load the accounts: ${sentence(error.message)}.`);
      else if (!(error instanceof ApiError)) throw error;
    }
  }

  render(queues) {
    const today = new Date();
    const sentByAccount = new Map();
    let sentToday = 0;
    let running = 0;
    for (const queue of queues.items) {
      const sent = queue.counters?.sent ?? 0;
      sentByAccount.set(queue.accountId, (sentByAccount.get(queue.accountId) ?? 0) + sent);
      if (sameDay(queue.startedAt, today)) sentToday += sent;
      if (RUNNING.has(queue.status)) running += 1;
    }
    const more = queues.complete ? "" : "+";
    const active = this.accounts.filter((account) => account.status === "ACTIVE").length;
    const cards = [
      { value: `${count(this.accounts.length)}${this.accountsComplete ? "" : "+"}`, label: "Accounts", sub: `${count(active)} active` },
      { value: `${count(sentToday)}${more}`, label: "Messages sent today", sub: "by queues started today" },
      { value: `${count(running)}${more}`, label: "Queues running", sub: `${count(queues.items.length)}${more} ${queues.items.length === 1 ? "queue" : "queues"} in all` },
    ];
    // Spend: the API reports no costs yet, so there is no card rather than a made-up figure.
    $("#summary").replaceChildren(
      ...cards.map((card) =>
        h("li", {}, h("span", { class: "value", text: card.value }), h("span", { class: "label", text: card.label }), h("span", { class: "hint", text: card.sub })),
      ),
    );
    const body = $("#accounts-body");
    if (!this.accounts.length) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 10, text: "No accounts yet: add one to start sending." })));
    } else {
      body.replaceChildren(...this.accounts.map((account) => this.row(account, sentByAccount.get(account.id) ?? 0)));
    }
    $("#accounts-footnote").textContent =
      "Messages sent: the sum over the account's queues (" + (queues.complete ? "all of them" : "the first 2,000") + "). Quality and tier are as last set on the account.";
  }

  row(account, sent) {
    const label = account.displayName;
    const roles = [
      account.isPrimary ? h("span", { class: "badge primary-role", text: "Primary" }) : null,
      account.isDefault ? h("span", { class: "badge default-role", text: "Default" }) : null,
    ];
    const cell = (heading, ...content) => h("td", { "data-label": heading }, ...content);
    const actions = h(
      "div",
      { class: "row-actions" },
      h("button", { type: "button", class: "button small", "aria-label": `Edit ${label}`, text: "Edit", onclick: () => this.openEdit(account) }),
      h("button", { type: "button", class: "button small", "aria-label": `Details of ${label}`, text: "Details", onclick: () => this.showDetails(account) }),
      account.isPrimary
        ? null
        : h("button", { type: "button", class: "button small", "aria-label": `Make ${label} primary`, text: "Make primary", onclick: () => this.change(account, { isPrimary: true }, `${label} is now the primary account.`) }),
      account.isDefault
        ? null
        : h("button", { type: "button", class: "button small", "aria-label": `Make ${label} default`, text: "Make default", onclick: () => this.change(account, { isDefault: true }, `${label} is now the default account.`) }),
      h("button", { type: "button", class: "button small link-danger", "aria-label": `Delete ${label}`, text: "Delete", onclick: () => this.confirmDelete(account) }),
    );
    return h(
      "tr",
      { "data-account-id": account.id },
      h("th", { scope: "row", "data-label": "Name" }, label),
      cell("Number", account.phoneNumber),
      cell("Provider", account.provider),
      cell("Status", h("span", { class: `badge status-${account.status}`, text: account.status })),
      cell("Role", ...(roles.some(Boolean) ? roles : ["—"])),
      cell("Quality", h("span", { class: `badge quality-${account.qualityRating}`, text: account.qualityRating })),
      cell("Tier", account.messagingTier.replace("TIER_", "")),
      h("td", { class: "number", "data-label": "Rate limit" }, `${count(account.limits.messagesPerSecond)}/s, ${count(account.limits.dailyRecipientLimit)}/day`),
      h("td", { class: "number", "data-label": "Messages sent" }, count(sent)),
      cell("Actions", actions),
    );
  }

  async change(account, body, done) {
    this.message("");
    try {
      await this.app.api.updateAccount(account.id, body);
      this.app.notify(done);
      await this.refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 401) this.message(`Could not change ${account.displayName}: ${sentence(error.message)}.`);
    }
  }

  confirmDelete(account) {
    const dialog = $("#confirm-dialog");
    $("#confirm-title").textContent = `Delete ${account.displayName}?`;
    $("#confirm-text").textContent = `The account ${account.phoneNumber} and its stored credentials are removed. Queues that used it keep their history.`;
    const yes = $("#confirm-yes");
    const fresh = yes.cloneNode(true); // drops the previous account's listener
    yes.replaceWith(fresh);
    fresh.addEventListener("click", async () => {
      dialog.close();
      this.message("");
      try {
        await this.app.api.deleteAccount(account.id);
        this.app.notify(`${account.displayName} was deleted.`);
        await this.refresh();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status !== 401) {
          this.message(`${account.displayName} was not deleted: ${sentence(error.message)}.`);
          $("#accounts-message").focus?.();
        }
      }
    });
    dialog.showModal();
  }

  showDetails(account) {
    const rows = [
      ["Id", account.id],
      ["Display name", account.displayName],
      ["Phone number", account.phoneNumber],
      ["Provider", account.provider],
      ["Credentials", account.credentials?.configured ? `configured (${account.credentials.hint || "no hint"})` : "none"],
      ["Status", account.status],
      ["Primary / default", `${account.isPrimary ? "primary" : "not primary"}, ${account.isDefault ? "default" : "not default"}`],
      ["Limits", `${account.limits.messagesPerSecond} messages/s, ${account.limits.dailyRecipientLimit} recipients/day`],
      ["Verification", account.verificationStatus],
      ["Quality rating", account.qualityRating],
      ["Messaging tier", account.messagingTier],
      ["Delivery ready", account.deliveryReady ? "yes" : "no (saving the account again completes it)"],
      ["Created", dateTime(account.createdAt)],
      ["Updated", dateTime(account.updatedAt)],
    ];
    $("#details-title").textContent = account.displayName;
    $("#details-list").replaceChildren(...rows.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", { text: value })]));
    $("#details-dialog").showModal();
  }

  // --- Create / edit dialog

  showProviderFields() {
    const provider = $("#account-provider").value;
    for (const group of this.form.querySelectorAll("[data-provider]")) group.hidden = group.dataset.provider !== provider;
  }

  openCreate() {
    this.editing = null;
    this.form.reset();
    clearErrors(this.form);
    $("#account-dialog-title").textContent = "Add account";
    $("#account-provider").disabled = false;
    $("#credentials-current").hidden = true;
    for (const element of this.form.querySelectorAll("[data-create-only]")) element.hidden = false;
    this.showProviderFields();
    this.dialog.showModal();
    $("#account-displayName").focus();
  }

  openEdit(account) {
    this.editing = account;
    this.form.reset();
    clearErrors(this.form);
    $("#account-dialog-title").textContent = `Edit ${account.displayName}`;
    const values = {
      displayName: account.displayName,
      phoneNumber: account.phoneNumber,
      provider: account.provider,
      status: account.status,
      messagesPerSecond: account.limits.messagesPerSecond,
      dailyRecipientLimit: account.limits.dailyRecipientLimit,
      qualityRating: account.qualityRating,
      messagingTier: account.messagingTier,
      verificationStatus: account.verificationStatus,
    };
    for (const [name, value] of Object.entries(values)) this.form.elements[name].value = value;
    $("#account-provider").disabled = true; // the API refuses a provider change
    const current = $("#credentials-current");
    current.hidden = !account.credentials?.configured;
    current.textContent = `Stored: ${account.credentials?.hint || "configured"}. Leave these empty to keep them; fill them in to replace them.`;
    for (const element of this.form.querySelectorAll("[data-create-only]")) element.hidden = true;
    this.showProviderFields();
    this.dialog.showModal();
    $("#account-displayName").focus();
  }

  body() {
    const elements = this.form.elements;
    const provider = elements.provider.value;
    const number = (name) => (elements[name].value === "" ? elements[name].value : Number(elements[name].value));
    const body = {
      displayName: elements.displayName.value.trim(),
      phoneNumber: elements.phoneNumber.value.trim(),
      status: elements.status.value,
      limits: { messagesPerSecond: number("messagesPerSecond"), dailyRecipientLimit: number("dailyRecipientLimit") },
      qualityRating: elements.qualityRating.value,
      messagingTier: elements.messagingTier.value,
      verificationStatus: elements.verificationStatus.value,
    };
    const credentials = {};
    for (const name of CREDENTIAL_FIELDS[provider]) {
      const value = elements[name].value.trim();
      if (value) credentials[name] = value;
    }
    if (this.editing) {
      if (Object.keys(credentials).length) body.credentials = credentials;
    } else {
      body.provider = provider;
      if (provider !== "sandbox") body.credentials = credentials;
      if (elements.isPrimary.checked) body.isPrimary = true;
      if (elements.isDefault.checked) body.isDefault = true;
    }
    return body;
  }

  async save() {
    const submit = this.form.querySelector("[data-submit]");
    submit.disabled = true;
    try {
      const body = this.body();
      const saved = this.editing
        ? await this.app.api.updateAccount(this.editing.id, body)
        : await this.app.api.createAccount(body);
      this.dialog.close();
      this.app.notify(`${saved.displayName} was ${this.editing ? "saved" : "created"}.`);
      await this.refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) this.dialog.close();
      else showErrors(this.form, error.problems());
    } finally {
      submit.disabled = false;
    }
  }
}
