// Actions that change the coordinator's state, offered only to a token that may take them: the
// caller's role comes from GET /api/v1/whoami, and with a viewer's every action button is
// hidden (body[data-role="viewer"] in style.css), since the API would refuse it anyway. Until
// the role is known the buttons show, and an error from the API is shown if one is refused.
// The buttons ask for confirmation first.
import { api } from '../api';
import { showError } from '../app';
import { h } from '../dom';

let asked = 0;

// Asks the coordinator who the token is and marks the page with it; a failure (no token, an
// unknown one) leaves the page unmarked, and the views say what went wrong on their own. Only
// the newest question's answer counts: the token may have changed while an older one was out.
export async function loadRole(): Promise<void> {
  const question = ++asked;
  let role = '';
  try {
    role = (await api.whoami()).role ?? '';
  } catch {
    role = '';
  }
  if (question === asked) document.body.dataset.role = role;
}

const CANCEL_EFFECT = {
  sweep: 'Its running jobs stop and pending ones never start.',
  job: 'It stops if it runs, and never starts if it waits.',
};

// The question a Cancel button asks before it acts, worded for what it cancels.
export function cancelQuestion(kind: keyof typeof CANCEL_EFFECT, id: string): string {
  return `Cancel ${kind} ${id}? ${CANCEL_EFFECT[kind]}`;
}

export function cancelButton(id: string, kind: keyof typeof CANCEL_EFFECT,
  done?: () => void): HTMLButtonElement {
  const button = h('button', { type: 'button', className: 'danger', 'data-action': 'cancel',
    'data-id': id }, 'Cancel');
  button.addEventListener('click', async (event) => {
    event.stopPropagation();
    if (!window.confirm(cancelQuestion(kind, id))) return;
    // A new action: the last one's error, if any, is old news.
    showError('');
    button.disabled = true;
    try {
      const { cancelledJobIds = [] } = await api.cancel(id);
      button.textContent = `cancelled ${cancelledJobIds.length}`;
      done?.();
    } catch (e) {
      showError(`cancel ${id}: ${(e as Error).message}`);
      button.disabled = false;
    }
  });
  return button;
}

// Runs a failed or cancelled job again (a new attempt, from its last checkpoint if it has one).
export function retryButton(sweepId: string, jobId: string, done?: () => void): HTMLButtonElement {
  const button = h('button', { type: 'button', 'data-action': 'retry', 'data-id': jobId }, 'Retry');
  button.addEventListener('click', async (event) => {
    event.stopPropagation();
    if (!window.confirm(`Retry job ${jobId}? It runs again as a new attempt.`)) return;
    showError('');
    button.disabled = true;
    try {
      const { requeuedJobIds = [], refused = [] } = await api.retry(sweepId, [jobId]);
      if (refused.length > 0) throw new Error(refused.map((r) => r.reason ?? '').join('; '));
      button.textContent = requeuedJobIds.length > 0 ? 'requeued' : 'nothing to retry';
      done?.();
    } catch (e) {
      showError(`retry ${jobId}: ${(e as Error).message}`);
      button.disabled = false;
    }
  });
  return button;
}
