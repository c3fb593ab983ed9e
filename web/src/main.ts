// The Ablate dashboard: routes (#/, #/sweeps/<id>[/grid|curves|cost], #/jobs/<id>, #/workers),
// the header's theme switch and token field, and keyboard shortcuts (g s: sweeps, g w: workers,
// 1-3: a sweep's tabs).
import { setToken, takeTokenFromAddress } from './api';
import { closeSweepSession, showError } from './app';
import './style.css';
import { jobView } from './views/job';
import { TABS, sweepView, type Tab } from './views/sweep';
import { sweepsView } from './views/sweeps';
import { loadRole } from './views/actions';
import { workersView } from './views/workers';

const THEME_KEY = 'ablate.theme';

function applyTheme(theme: string | null): void {
  const dark = theme ? theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

let current: { dispose: () => void } | null = null;

function route(): void {
  takeTokenFromAddress();
  current?.dispose();
  showError('');
  const hash = location.hash.replace(/\?.*$/, '');
  const sweep = hash.match(/^#\/sweeps\/([^/]+)(?:\/(\w+))?$/);
  const job = hash.match(/^#\/jobs\/([^/]+)$/);
  let view;
  if (sweep) {
    const tab = (TABS as readonly string[]).includes(sweep[2] ?? '') ? sweep[2] as Tab : 'grid';
    view = sweepView(decodeURIComponent(sweep[1]), tab);
  } else {
    closeSweepSession();
    document.title = 'Ablate';
    view = job ? jobView(decodeURIComponent(job[1])) :
      hash === '#/workers' ? workersView() : sweepsView();
  }
  current = view;
  const main = document.getElementById('view') as HTMLElement;
  main.replaceChildren(view.el);
  for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    const active = a.dataset.nav === (hash === '#/workers' ? 'workers' : 'sweeps');
    a.classList.toggle('active', active);
  }
}

let prefix = '';
document.addEventListener('keydown', (event) => {
  const target = event.target as HTMLElement;
  if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName) || event.ctrlKey || event.metaKey ||
    event.altKey) return;
  if (prefix === 'g') {
    prefix = '';
    if (event.key === 's') location.hash = '#/';
    if (event.key === 'w') location.hash = '#/workers';
    return;
  }
  if (event.key === 'g') {
    prefix = 'g';
    return;
  }
  const sweep = location.hash.match(/^#\/sweeps\/([^/?]+)/);
  const n = Number(event.key);
  if (sweep && n >= 1 && n <= TABS.length) location.hash = `#/sweeps/${sweep[1]}/${TABS[n - 1]}`;
});

document.getElementById('theme')?.addEventListener('click', () => {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  route();
});

document.getElementById('token-form')?.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('token-input') as HTMLInputElement;
  setToken(input.value.trim());
  input.value = '';
  closeSweepSession();
  void loadRole();
  route();
});

applyTheme(localStorage.getItem(THEME_KEY));
window.addEventListener('hashchange', route);
route();  // takes a token handed over in the address first
void loadRole();
