// Actions that change the coordinator's state, offered only to a token that may take them: the
// caller's role comes from GET /api/v1/whoami, and with a viewer's every action button is
// hidden (body[data-role="viewer"] in style.css), since the API would refuse it anyway. Until
// the role is known the buttons show, and an error from the API is shown if one is refused.
// The buttons ask for confirmation first, and are disabled while one runs or while the
// coordinator cannot be reached (app.ts's setConnection).
import { Unreachable, api } from '../api';
import { showError, syncActionButton } from '../app';
import { h } from '../dom';
import { plural } from '../format';
import type { JobState } from '../gen/ablate/v1/job';
import type { RetryJobsResponse } from '../gen/ablate/v1/sweep_service';

let asked = 0;

// Asks the coordinator who the token is, marks the page with it and names it in the header; a
// failure (no token, an unknown one) leaves the page unmarked, and the views say what went
// wrong on their own. Only the newest question's answer counts: the token may have changed
// while an older one was out.
export async function loadRole(): Promise<void> {
  const question = ++asked;
  let role = '';
  try {
    role = (await api.whoami()).role ?? '';
  } catch {
    role = '';
  }
  if (question !== asked) return;
  document.body.dataset.role = role;
  const el = document.getElementById('role');
  if (!el) return;
  el.textContent = role ? `role: ${role}` : '';
  el.hidden = !role;
}

// What a failed action says after its name: an unanswered request (the browser's own words are
// "TypeError: Failed to fetch") tells the reader what to do instead.
export function actionError(what: string, e: unknown): string {
  return `${what}: ${e instanceof Unreachable ?
    'the coordinator cannot be reached; try again when the page is live' : (e as Error).message}`;
}

function setBusy(button: HTMLButtonElement, busy: boolean): void {
  button.dataset.busy = String(busy);
  syncActionButton(button);
}

// A button that asks `question` and then runs `act`; a failure shows on the error line as
// `what: why` and frees the button for another try. `act` says whether its work is done, when
// the button stays disabled (or gives way to what it did: settle).
function actionButton(props: { action: string; id: string; label: string; danger?: boolean },
  question: string, what: string, act: (button: HTMLButtonElement) => Promise<boolean>):
  HTMLButtonElement {
  const button = h('button', { type: 'button', className: props.danger ? 'danger' : undefined,
    'data-action': props.action, 'data-id': props.id }, props.label);
  syncActionButton(button);
  button.addEventListener('click', async (event) => {
    event.stopPropagation();
    if (!window.confirm(question)) return;
    // A new action: the last one's error, if any, is old news.
    showError('');
    setBusy(button, true);
    try {
      if (!await act(button)) setBusy(button, false);
    } catch (e) {
      showError(actionError(what, e));
      setBusy(button, false);
    }
  });
  return button;
}

// Puts `outcome`, a sentence, where the button was: what the action did is a state of the page,
// not a button to press again. The view's next refresh shows what followed.
function settle(button: HTMLButtonElement, outcome: string): void {
  button.replaceWith(h('span', { className: 'muted', role: 'status' }, outcome));
}

const CANCEL_EFFECT = {
  sweep: 'Its running jobs stop and pending ones never start.',
  job: 'It stops if it runs, and never starts if it waits.',
};

// The question a Cancel button asks before it acts, worded for what it cancels.
export function cancelQuestion(kind: keyof typeof CANCEL_EFFECT, id: string): string {
  return `Cancel ${kind} ${id}? ${CANCEL_EFFECT[kind]}`;
}

// What a cancel came to, given the jobs it cancelled: none where every one had ended already.
function cancelOutcome(kind: keyof typeof CANCEL_EFFECT, cancelled: number): string {
  if (kind === 'job') return cancelled ? 'Cancelled.' : 'Nothing to cancel: it had ended.';
  return cancelled ? `Cancelled ${plural(cancelled, 'job')}.` :
    'Nothing to cancel: every job had ended.';
}

export function cancelButton(id: string, kind: keyof typeof CANCEL_EFFECT,
  done?: () => void): HTMLButtonElement {
  return actionButton({ action: 'cancel', id, label: 'Cancel', danger: true },
    cancelQuestion(kind, id), `cancel ${id}`, async (button) => {
      const { cancelledJobIds = [] } = await api.cancel(id);
      settle(button, cancelOutcome(kind, cancelledJobIds.length));
      done?.();
      return true;
    });
}

// The question a job's Retry asks; `permanent`, why its last attempt failed where it failed in
// a way another attempt meets again (attempts.ts), warns that a retry will likely fail alike.
export function retryQuestion(jobId: string, permanent?: string): string {
  const warning = permanent ? ` Its last attempt failed permanently (${permanent}): unless ` +
    'that cause was fixed, the retry will most likely fail the same way.' : '';
  return `Retry job ${jobId}? It runs again as a new attempt.${warning}`;
}

// Runs a failed or cancelled job again (a new attempt, from its last checkpoint if it has one).
export function retryButton(sweepId: string, jobId: string, permanent?: string,
  done?: () => void): HTMLButtonElement {
  return actionButton({ action: 'retry', id: jobId, label: 'Retry' },
    retryQuestion(jobId, permanent), `retry ${jobId}`, async (button) => {
      const { requeuedJobIds = [], refused = [] } = await api.retry(sweepId, { jobIds: [jobId] });
      if (refused.length > 0) throw new Error(refused.map((r) => r.reason ?? '').join('; '));
      settle(button, requeuedJobIds.length > 0 ? 'Requeued.' : 'Nothing to retry.');
      done?.();
      return true;
    });
}

// What a sweep's retry came to: the jobs requeued, those refused with why, and those an update
// dropped from the sweep's spec, which a retry by state leaves alone.
export function retryOutcome(response: RetryJobsResponse): string {
  const { requeuedJobIds = [], refused = [], droppedLeft = 0 } = response;
  const parts = [`requeued ${plural(requeuedJobIds.length, 'job')}`];
  if (refused.length > 0) {
    parts.push(`refused ${plural(refused.length, 'job')} (` +
      `${refused.map((r) => `${r.jobId}: ${r.reason}`).join('; ')})`);
  }
  if (droppedLeft > 0) {
    parts.push(`left ${plural(droppedLeft, 'job')} an update dropped from the sweep alone`);
  }
  return parts.join('; ');
}

const RETRY_STATES: Record<'failed' | 'cancelled', JobState> = {
  failed: 'JOB_STATE_FAILED', cancelled: 'JOB_STATE_CANCELLED' };

// Runs every failed (or cancelled) job of a sweep again; `report` hears what came of it ('' as
// it starts). The button stays for another try where nothing was requeued.
export function retrySweepButton(sweepId: string, state: keyof typeof RETRY_STATES,
  count: number, report: (outcome: string) => void): HTMLButtonElement {
  return actionButton({ action: `retry-${state}`, id: sweepId, label: `Retry ${state}` },
    `Retry the ${plural(count, `${state} job`)} of sweep ${sweepId}? Each runs again as a new ` +
    'attempt.', `retry ${state} jobs of ${sweepId}`, async () => {
      report('');
      const response = await api.retry(sweepId, { states: [RETRY_STATES[state]] });
      report(retryOutcome(response));
      return (response.requeuedJobIds ?? []).length > 0;
    });
}
