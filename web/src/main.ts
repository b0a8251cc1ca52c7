// The resnet-ts web app: three views (Classify, Train, Inspect), each with its own engine worker
// (worker.ts) so a long forward pass or a training run never blocks the page.
import { classifyView } from './classify.js';
import { inspectView } from './inspect.js';
import { trainView } from './train.js';
import { Engine, defaultThreads, el } from './ui.js';

export interface Catalog {
  models: { name: string; description: string; input: [number, number, number] }[];
  pretrained: { id: string; model: string; acc1: number; sizeMB: number }[];
}

/** What the page exposes for the console (and for tests): the views' state. */
export const app = {
  engines: {} as Record<string, Engine>,
  trainHistory: [] as { step: number; loss: number; acc: number }[],
  lastClassify: null as unknown,
};
(globalThis as { resnetApp?: typeof app }).resnetApp = app;

/** A worker per view, started on first use, with the backend settings applied. */
export async function engineFor(view: string, backend = 'wasm', threads = defaultThreads()): Promise<{ engine: Engine; backend: string; threads: number }> {
  const e = (app.engines[view] ??= new Engine());
  const key = `${backend}/${threads}`;
  if (settings.get(view)?.key !== key) settings.set(view, { key, got: e.call<{ backend: string; threads: number }>('init', { backend, threads }) });
  return { engine: e, ...(await settings.get(view)!.got) };
}
const settings = new Map<string, { key: string; got: Promise<{ backend: string; threads: number }> }>();

async function main(): Promise<void> {
  const root = document.getElementById('app')!;
  const status = el(
    'p',
    { class: 'isolation' },
    crossOriginIsolated
      ? `cross-origin isolated: up to ${defaultThreads()} threads`
      : 'not cross-origin isolated: 1 thread (serve with COOP/COEP headers, e.g. npm run web, for more)',
  );
  const { engine } = await engineFor('catalog');
  const catalog = await engine.call<Catalog>('catalog');
  const views: [string, string, () => HTMLElement][] = [
    ['classify', 'Classify', () => classifyView(catalog)],
    ['train', 'Train', () => trainView()],
    ['inspect', 'Inspect', () => inspectView(catalog)],
  ];
  const made = new Map<string, HTMLElement>();
  const tabs = el('nav', { class: 'tabs', role: 'tablist' });
  const body = el('main', {});
  const show = (id: string) => {
    if (!made.has(id)) {
      const v = views.find((x) => x[0] === id)!;
      const sec = el('section', { id: `view-${id}`, role: 'tabpanel' }, v[2]());
      made.set(id, sec);
      body.append(sec);
    }
    for (const [k, sec] of made) sec.hidden = k !== id;
    for (const b of tabs.children) b.setAttribute('aria-selected', String((b as HTMLElement).dataset.view === id));
    if (location.hash !== `#${id}`) history.replaceState(null, '', `#${id}`);
  };
  for (const [id, label] of views) tabs.append(el('button', { role: 'tab', 'data-view': id, onclick: () => show(id) }, label));
  root.replaceChildren(el('header', {}, el('h1', {}, 'resnet-ts'), tabs), body, el('footer', {}, status));
  const first = location.hash.slice(1);
  show(views.some((v) => v[0] === first) ? first : 'classify');
}

main().catch((e: unknown) => {
  document.getElementById('app')!.replaceChildren(el('p', { class: 'error' }, `The app could not start: ${(e as Error).message}`));
});
