// Small helpers for building the views' DOM without a framework.
export function h<K extends keyof HTMLElementTagNameMap>(tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & Record<string, unknown> = {},
  ...children: (Node | string | null | undefined | false)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'for') {
      el.setAttribute(k, String(v));
    } else {
      (el as unknown as Record<string, unknown>)[k] = v;
    }
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function select(label: string, options: [string, string][], value: string,
  onChange: (v: string) => void, id?: string): HTMLLabelElement {
  const s = h('select', { id });
  for (const [v, text] of options) s.append(h('option', { value: v, selected: v === value }, text));
  s.addEventListener('change', () => onChange(s.value));
  return h('label', { className: 'control' }, `${label} `, s);
}
