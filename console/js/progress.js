// Rate and ETA of a queue. The API's own figures (ratePerSecond, etaSeconds) win; while it has none yet, the
// console measures settled messages between its own polls.

const SETTLED = ["sent", "failed", "optedOut", "skipped"];
const WINDOW_MS = 30000;

export function settledOf(counters) {
  return SETTLED.reduce((sum, name) => sum + (counters?.[name] ?? 0), 0);
}

export class RateTracker {
  constructor() {
    this.samples = new Map(); // queue id -> [{at, settled}]
  }

  // Record a poll and return {rate, eta} (messages per second, seconds; null when unknown).
  update(progress, now = Date.now()) {
    const samples = this.samples.get(progress.queueId) ?? [];
    samples.push({ at: now, settled: settledOf(progress.counters) });
    while (samples.length > 2 && now - samples[0].at > WINDOW_MS) samples.shift();
    this.samples.set(progress.queueId, samples);

    let rate = progress.ratePerSecond > 0 ? progress.ratePerSecond : null;
    if (rate === null && samples.length >= 2) {
      const first = samples[0];
      const last = samples[samples.length - 1];
      const seconds = (last.at - first.at) / 1000;
      if (seconds > 0 && last.settled > first.settled) rate = (last.settled - first.settled) / seconds;
    }
    const pending = progress.counters?.pending ?? 0;
    let eta = progress.etaSeconds ?? null;
    if (eta === null && rate && pending) eta = pending / rate;
    if (!pending) eta = null;
    return { rate, eta };
  }

  forget(queueId) {
    this.samples.delete(queueId);
  }
}
