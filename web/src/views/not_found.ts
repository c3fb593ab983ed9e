// What an address that names nothing shows: one line saying so and the way back, in place of
// a view's empty sections.
import { h } from '../dom';

// Turns the view `el` into the not-found page: `message` (text, and links to what is there
// instead) and a link to the sweeps.
export function showNotFound(el: HTMLElement, ...message: (string | Node)[]): void {
  el.dataset.view = 'not-found';
  el.replaceChildren(h('h1', {}, 'Not found'), h('p', { id: 'not-found' }, ...message),
    h('p', {}, h('a', { href: '#/' }, '← all sweeps')));
}

export function notFoundView(...message: (string | Node)[]):
  { el: HTMLElement; dispose: () => void } {
  const el = h('section', { className: 'view' });
  showNotFound(el, ...message);
  return { el, dispose: () => {} };
}
