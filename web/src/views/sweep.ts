// One sweep: its header (state, counts, progress, cancel, retry of its failed or cancelled jobs;
// the jobs an update dropped counted apart, as its state and a retry by state leave them out)
// and tabs for the Grid, Curves and Cost views, which share the sweep's live session.
import { sweepSession } from '../app';
import { h } from '../dom';
import { escapeHtml, plural, stateName } from '../format';
import { cancelButton, retrySweepButton } from './actions';
import { costView } from './cost';
import { curvesView } from './curves';
import { gridView } from './grid';
import { notFoundView, showNotFound } from './not_found';
import { ended } from './sweeps';

export const TABS = ['grid', 'curves', 'cost'] as const;
export type Tab = (typeof TABS)[number];

const tabName = (tab: Tab) => tab[0].toUpperCase() + tab.slice(1);

// The tab an address (#/sweeps/ID/NAME) names, the Grid where it names none; null where NAME
// is none of the sweep's tabs.
export function tabOf(name: string | undefined): Tab | null {
  if (name === undefined) return 'grid';
  return (TABS as readonly string[]).includes(name) ? name as Tab : null;
}

// What an address naming no tab of the sweep shows, in place of a tab it did not ask for: that
// the view is unknown, and the sweep's views as links ("Grid, Curves and Cost").
export function unknownTabView(sweepId: string, name: string):
  { el: HTMLElement; dispose: () => void } {
  const links = TABS.flatMap((t, i) => [i === 0 ? '' : i < TABS.length - 1 ? ', ' : ' and ',
    h('a', { href: `#/sweeps/${encodeURIComponent(sweepId)}/${t}` }, tabName(t))]);
  return notFoundView(`No view ${name} of sweep ${sweepId}: its views are `, ...links, '.');
}

export function sweepView(sweepId: string, tab: Tab): { el: HTMLElement; dispose: () => void } {
  const session = sweepSession(sweepId);
  const head = h('div', { className: 'sweep-head' });
  const actions = h('span', { className: 'actions' });
  const outcome = h('span', { className: 'muted', id: 'sweep-action-result', role: 'status' });
  const tabs = h('nav', { className: 'tabs', role: 'tablist', 'aria-label': 'sweep views' },
    ...TABS.map((t) => h('a', { href: `#/sweeps/${encodeURIComponent(sweepId)}/${t}`,
      role: 'tab', 'aria-selected': String(t === tab), className: t === tab ? 'active' : '',
      'data-tab': t }, tabName(t))));
  const inner = tab === 'curves' ? curvesView(session) : tab === 'cost' ? costView(session) :
    gridView(session);
  const el = h('section', { className: 'view', 'data-view': 'sweep', 'data-sweep-id': sweepId },
    h('p', {}, h('a', { href: '#/' }, '← all sweeps')), head,
    h('div', { className: 'sweep-actions' }, actions, outcome), tabs, inner.el);
  // A retry's outcome; the jobs it requeued run, and the page follows them.
  const report = (text: string) => {
    outcome.textContent = text;
    if (text) session.follow();
  };
  let offered = '';
  const unlisten = session.listen(() => {
    // No such sweep: one line says so, in place of its header and empty tabs.
    if (session.missing) {
      showNotFound(el, session.missing);
      return;
    }
    const sweep = session.model.sweep;
    if (!sweep) return;
    const state = stateName(sweep.state);
    // The counts leave out the jobs an update dropped (JobCounts.dropped), as its state does.
    const counts = sweep.counts ?? {};
    const { dropped = 0, droppedLive = 0 } = counts;
    head.innerHTML = `<h1>${escapeHtml(sweep.id ?? sweepId)} <span class="badge state-${state}"` +
      ` id="sweep-state">${state}</span></h1><p class="muted">${escapeHtml(sweep.spec?.description ?? '')}</p>` +
      `<p id="sweep-summary">${ended(counts)}/${counts.total ?? 0} ended · ` +
      (['running', 'assigned', 'pending', 'succeeded', 'failed', 'cancelled'] as const)
        .filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(', ') +
      (dropped ? ` · ${plural(dropped, 'job')} an update dropped, not counted` +
        (droppedLive ? ` (${droppedLive} of them not ended)` : '') : '') + '</p>';
    // Buttons are made afresh only when what they act on changed, not on every event.
    const active = state === 'active';
    const { failed = 0, cancelled = 0 } = counts;
    if (`${active} ${failed} ${cancelled}` !== offered) {
      offered = `${active} ${failed} ${cancelled}`;
      actions.replaceChildren(...[active && cancelButton(sweepId, 'sweep'),
        failed > 0 && retrySweepButton(sweepId, 'failed', failed, report),
        cancelled > 0 && retrySweepButton(sweepId, 'cancelled', cancelled, report)]
        .filter((b): b is HTMLButtonElement => !!b));
    }
    document.title = `Ablate · ${sweepId}`;
  });
  return { el, dispose: () => { unlisten(); inner.dispose(); } };
}
