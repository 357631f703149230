// Exponential backoff with full jitter: a delay drawn uniformly from
// [0, min(cap, base * 2^attempt)), so clients that lost the same server do
// not all come back at the same moment.

export const BASE_MS = 500;
export const CAP_MS = 30000;

export function backoffDelay(attempt, { base = BASE_MS, cap = CAP_MS, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
