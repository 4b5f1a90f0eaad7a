// Entry point: configuration, sign-in (the API key lives in sessionStorage only), tabs.

import { Api, ApiError } from "./api.js";
import { AccountsTab } from "./accounts.js";
import { QueuesTab } from "./queues.js";
import { sentence } from "./dom.js";

const KEY_STORAGE = "wabacast.apiKey";
const $ = (selector) => document.querySelector(selector);

class Console {
  constructor(config) {
    this.apiUrl = config.apiUrl ?? "";
    this.accounts = new AccountsTab(this);
    this.queues = new QueuesTab(this);
    this.tabs = [
      { tab: $("#tab-accounts"), panel: $("#panel-accounts"), view: this.accounts },
      { tab: $("#tab-queues"), panel: $("#panel-queues"), view: this.queues },
    ];
    this.api = null;
    this.bind();
  }

  bind() {
    $("#login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.signIn($("#api-key").value.trim());
    });
    $("#sign-out").addEventListener("click", () => this.signOut("Signed out. The key was removed from this tab."));
    this.tabs.forEach(({ tab }, index) => {
      tab.addEventListener("click", () => this.select(index));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (event.key === "Home" || event.key === "End" || step) {
          event.preventDefault();
          const next = event.key === "Home" ? 0 : event.key === "End" ? this.tabs.length - 1 : (index + step + this.tabs.length) % this.tabs.length;
          this.select(next);
          this.tabs[next].tab.focus();
        }
      });
    });
    for (const dialog of document.querySelectorAll("dialog")) {
      for (const button of dialog.querySelectorAll("[data-close]")) button.addEventListener("click", () => dialog.close());
    }
    window.addEventListener("hashchange", () => this.fromHash());
  }

  start() {
    const stored = sessionStorage.getItem(KEY_STORAGE);
    if (stored) this.signIn(stored);
    else this.showLogin();
  }

  notify(text) {
    const notice = $("#notice");
    notice.textContent = text;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => { notice.textContent = ""; }, 8000);
  }

  showLogin(message = "") {
    for (const { panel, view } of this.tabs) {
      panel.hidden = true;
      view.hide();
    }
    $("#tabs").hidden = true;
    $("#sign-out").hidden = true;
    $("#login").hidden = false;
    const error = $("#api-key-error");
    error.textContent = message;
    const input = $("#api-key");
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    input.focus();
  }

  async signIn(key) {
    if (!key) {
      this.showLogin("Paste an API key first.");
      return;
    }
    const api = new Api(this.apiUrl, key, () => {});
    try {
      // Checks the key and that it is a business key (an admin key gets 403 on the business routes).
      await api.page("/api/whatsapp/accounts", { limit: 1 });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // Only a refused key is forgotten; with the API unreachable, a reload tries the stored one again.
      if (error.status === 401 || error.status === 403) sessionStorage.removeItem(KEY_STORAGE);
      if (error.status === 401) this.showLogin("This API key was not accepted (401): check that it is complete and not revoked.");
      else if (error.status === 403) this.showLogin("This key may not use the business routes (403): the console needs a business API key, not an admin key.");
      else this.showLogin(`Could not sign in: ${sentence(error.message)}.`);
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    this.api = new Api(this.apiUrl, key, () => this.signOut("Your API key is no longer accepted (401). Sign in again."));
    $("#api-key").value = "";
    $("#login").hidden = true;
    $("#tabs").hidden = false;
    $("#sign-out").hidden = false;
    this.fromHash();
  }

  signOut(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    this.api = null;
    this.showLogin(message);
  }

  fromHash() {
    if (!this.api) return;
    const index = this.tabs.findIndex(({ panel }) => `#${panel.id.replace("panel-", "")}` === window.location.hash);
    this.select(index < 0 ? 0 : index);
  }

  select(index) {
    this.tabs.forEach(({ tab, panel, view }, i) => {
      const selected = i === index;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      panel.hidden = !selected;
      if (selected) view.show();
      else view.hide();
    });
    const hash = `#${this.tabs[index].panel.id.replace("panel-", "")}`;
    if (window.location.hash !== hash) history.replaceState(null, "", hash);
  }
}

async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json answered ${response.status}`);
  return response.json();
}

loadConfig()
  .then((config) => new Console(config).start())
  .catch((error) => {
    $("#notice").textContent = `The console could not load its configuration: ${error.message}`;
  });
