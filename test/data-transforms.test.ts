import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../src/base/errors.js';
import { RNG } from '../src/base/rng.js';
import type { Image } from '../src/data/dataset.js';
import { readNpz } from '../src/io/npy.js';
import {
  CenterCrop,
  Grayscale,
  Normalize,
  Pad,
  RandomCrop,
  RandomErasing,
  RandomHorizontalFlip,
  RandomResizedCrop,
  Resize,
  ToFloat,
  ToRGB,
  compose,
  crop,
  hflip,
  pad,
  resize,
  roundHalfEven,
  transformFromSpec,
  IMAGENET_MEAN,
  IMAGENET_STD,
} from '../src/data/transforms.js';

// Reference outputs from torch 1.13 / torchvision 0.14, written by scripts/make_data_fixtures.py.
const fx = readNpz(readFileSync(new URL('./data-fixtures/transforms.npz', import.meta.url)));

function ref(name: string): { shape: number[]; data: Float32Array } {
  const a = fx.get(name);
  assert.ok(a, `fixture ${name} missing`);
  return a;
}
function img(name: string, u8 = false): Image {
  const a = ref(name);
  const [c, h, w] = a.shape;
  return { data: u8 ? Uint8Array.from(a.data) : Float32Array.from(a.data), c, h, w };
}
function assertClose(got: Image, name: string, atol: number): void {
  const r = ref(name);
  assert.deepEqual([got.c, got.h, got.w], r.shape, `${name}: shape`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < r.data.length; i++) {
    const d = Math.abs(got.data[i] - r.data[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= atol, `${name}: max |diff| ${worst} at ${at} (got ${got.data[at]}, want ${r.data[at]}) > ${atol}`);
}

const rng0 = new RNG(0);

test('bilinear resize matches torch F.interpolate (align_corners=False), up and down, with and without antialias (atol 1e-6)', () => {
  const fm = img('fm');
  assertClose(resize(fm, 96, 96, { antialias: false }), 'fm_up96', 1e-6);
  assertClose(resize(fm, 96, 96, { antialias: true }), 'fm_up96_aa', 1e-6);
  assertClose(resize(fm, 17, 11, { antialias: false }), 'fm_down17x11', 1e-6);
  assertClose(resize(fm, 17, 11, { antialias: true }), 'fm_down17x11_aa', 1e-6);
  const rgb = img('rgb');
  assertClose(resize(rgb, 31, 50, { antialias: false }), 'rgb_31x50', 1e-6);
  assertClose(resize(rgb, 9, 40, { antialias: true }), 'rgb_9x40_aa', 1e-6); // down in h, up in w
  assertClose(resize(rgb, 10, 50, { interpolation: 'nearest' }), 'rgb_nearest_10x50', 0);
  // the d2l pipeline: ToFloat then Resize(96)
  assertClose(compose(new ToFloat(), new Resize(96)).apply(img('fm_u8', true), rng0), 'fm_up96', 1e-6);
});

test('Resize(int) keeps the aspect ratio like torchvision; uint8 input rounds like torchvision (atol 1e-6 float, exact uint8)', () => {
  assertClose(new Resize(16).apply(img('rgb')), 'rgb_Resize16_aa', 1e-6);
  assertClose(new Resize(16, { antialias: false }).apply(img('rgb')), 'rgb_Resize16_noaa', 1e-6);
  const u = new Resize(96, { antialias: false }).apply(img('fm_u8', true));
  assert.ok(u.data instanceof Uint8Array);
  assertClose(u, 'fm_u8_Resize96', 0);
  assertClose(new Resize(20, { antialias: false }).apply(img('fm_u8', true)), 'fm_u8_Resize20', 0);
});

test('CenterCrop (incl. padding when larger), resized_crop, pad modes, hflip, grayscale, normalize match torchvision (atol 1e-6)', () => {
  const rgb = img('rgb');
  assertClose(new CenterCrop(15).apply(rgb), 'rgb_CenterCrop15', 0);
  assertClose(new CenterCrop([14, 20]).apply(rgb), 'rgb_CenterCrop14x20', 0);
  assertClose(new CenterCrop(40).apply(rgb), 'rgb_CenterCrop40', 0);
  assertClose(resize(crop(rgb, 3, 5, 12, 20), 24, 24), 'rgb_resized_crop', 1e-6);
  assertClose(pad(rgb, [3, 2, 4, 1], 0, 'reflect'), 'rgb_pad_reflect', 0);
  assertClose(pad(rgb, [3, 2, 4, 1], 0, 'symmetric'), 'rgb_pad_symmetric', 0);
  assertClose(pad(rgb, [3, 2, 4, 1], 0, 'edge'), 'rgb_pad_edge', 0);
  assertClose(new Pad([3, 2, 4, 1], 0.5).apply(rgb), 'rgb_pad_const', 0);
  assertClose(hflip(rgb), 'rgb_hflip', 0);
  assertClose(new Grayscale().apply(rgb), 'rgb_gray', 1e-6);
  assertClose(Normalize.imagenet().apply(rgb), 'rgb_normalize', 1e-6);
  assert.deepEqual([...IMAGENET_MEAN, ...IMAGENET_STD], [0.485, 0.456, 0.406, 0.229, 0.224, 0.225]);
});

test('transforms do not write into their input', () => {
  const rgb = img('rgb');
  const before = rgb.data.slice();
  const t = compose(
    new RandomResizedCrop(8),
    new RandomHorizontalFlip(1),
    new Pad(2, 0, 'reflect'),
    new RandomCrop(8, { padding: 2 }),
    new Grayscale(3),
    new Normalize([0.5], [0.5]),
  );
  t.apply(rgb, new RNG(3));
  assert.deepEqual(rgb.data, before);
});

test('RandomResizedCrop: output size, crop inside the image, area share within [0.08, 1], seeded', () => {
  const t = new RandomResizedCrop(32);
  const rng = new RNG(1);
  let fallback = 0;
  for (let k = 0; k < 500; k++) {
    const [top, left, h, w] = t.params(60, 90, rng);
    assert.ok(top >= 0 && left >= 0 && top + h <= 60 && left + w <= 90, `${[top, left, h, w]}`);
    const share = (h * w) / (60 * 90);
    if (share > 1.0001 || share < 0.06) fallback++;
    assert.ok((w / h <= (4 / 3) * 1.2 && w / h >= 3 / 4 / 1.2) || share > 0.9, `ratio ${w / h}`);
  }
  assert.equal(fallback, 0);
  const a = t.apply(img('rgb'), new RNG(7));
  const b = t.apply(img('rgb'), new RNG(7));
  const c = t.apply(img('rgb'), new RNG(8));
  assert.deepEqual([a.c, a.h, a.w], [3, 32, 32]);
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
});

test('RandomCrop(28, padding 4) is a 28x28 window of the zero-padded image, all 81 offsets reachable', () => {
  const fm = img('fm');
  const padded = pad(fm, [4, 4, 4, 4]);
  const t = new RandomCrop(28, { padding: 4 });
  const rng = new RNG(2);
  const seen = new Set<string>();
  for (let k = 0; k < 2000; k++) {
    const out = t.apply(fm, rng);
    assert.deepEqual([out.h, out.w], [28, 28]);
    let found = '';
    for (let dy = 0; dy <= 8 && !found; dy++) {
      for (let dx = 0; dx <= 8 && !found; dx++) {
        const win = crop(padded, dy, dx, 28, 28);
        if (win.data.every((v, i) => v === out.data[i])) found = `${dy},${dx}`;
      }
    }
    assert.ok(found, 'crop is not a window of the padded image');
    seen.add(found);
  }
  assert.equal(seen.size, 81);
  assert.throws(() => new RandomCrop(40).apply(fm, rng), /larger than/);
  assert.deepEqual([new RandomCrop(40, { padIfNeeded: true }).apply(fm, rng).h], [40]);
});

test('RandomHorizontalFlip(0.5) flips about half the time (1000 draws, within 4 sigma)', () => {
  const t = new RandomHorizontalFlip();
  const rng = new RNG(5);
  const rgb = img('rgb');
  let flips = 0;
  for (let k = 0; k < 1000; k++) if (t.apply(rgb, rng) !== rgb) flips++;
  assert.ok(Math.abs(flips - 500) < 64, `flips ${flips}`);
  assert.equal(new RandomHorizontalFlip(0).apply(rgb, rng), rgb);
});

test('RandomErasing: one rectangle of value, area share in [0.02, 0.33] and ratio in [0.3, 3.3] up to rounding of the sides, rate p within 4 sigma, seeded', () => {
  const src: Image = { data: Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => 1 + (i % 7)), c: 2, h: 28, w: 28 };
  const t = new RandomErasing(0.5, [0.02, 0.33], [0.3, 3.3], -2);
  const rng = new RNG(11);
  let erased = 0;
  for (let k = 0; k < 1000; k++) {
    const out = t.apply(src, rng);
    if (out === src) continue;
    erased++;
    // the erased pixels (value -2; the source never holds it) form the same rectangle in both channels
    let top = 28,
      left = 28,
      bottom = -1,
      right = -1,
      n = 0;
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const e0 = out.data[y * 28 + x] === -2,
          e1 = out.data[784 + y * 28 + x] === -2;
        assert.equal(e0, e1, 'channels erased differently');
        if (!e0) assert.equal(out.data[y * 28 + x], src.data[y * 28 + x]);
        else {
          n++;
          top = Math.min(top, y);
          left = Math.min(left, x);
          bottom = Math.max(bottom, y);
          right = Math.max(right, x);
        }
      }
    }
    const eh = bottom - top + 1,
      ew = right - left + 1;
    assert.equal(n, eh * ew, 'erased region is not a rectangle');
    assert.ok(eh < 28 && ew < 28, `rectangle ${eh}x${ew} must fit strictly inside`);
    // rounding each side of a rectangle of area share s moves the share by at most ~(h+w)/2/784
    assert.ok(n > 0 && n / 784 <= 0.33 + 0.04, `area share ${n / 784}`);
    assert.ok(eh / ew >= 0.3 * 0.7 && eh / ew <= 3.3 / 0.7, `ratio ${eh / ew}`);
  }
  // a draw that does not fit (tall/wide ones can reach 29 px here) is retried up to 10 times, so ~p of the images are erased
  assert.ok(Math.abs(erased - 500) < 64, `erased ${erased} of 1000`);
  assert.equal(new RandomErasing(0).apply(src, rng), src);
  assert.deepEqual(t.apply(src, new RNG(3)).data, t.apply(src, new RNG(3)).data);
  // a rectangle covering the whole image never fits strictly inside: the image is left as it is
  assert.equal(new RandomErasing(1, [1, 1], [1, 1]).apply(src, rng), src);
  assert.throws(() => new RandomErasing(1).apply({ data: new Uint8Array(4), c: 1, h: 2, w: 2 }, rng), /float image/);
  assert.throws(() => new RandomErasing(1.5), /p must be in \[0, 1\]/);
});

test('ToFloat, Normalize on uint8 is an error, Grayscale/ToRGB channel conversions', () => {
  const u8: Image = { data: new Uint8Array([0, 51, 255, 128]), c: 1, h: 2, w: 2 };
  const f = new ToFloat().apply(u8);
  assert.deepEqual(Array.from(f.data), [0, 51 / 255, 1, 128 / 255].map(Math.fround));
  assert.throws(() => new Normalize([0.5], [0.5]).apply(u8), ConfigError);
  assert.throws(() => new Normalize([0.5, 0.5, 0.5], [1, 1, 1]).apply(f), /3 channel means/);
  const rgb = new ToRGB().apply(u8);
  assert.deepEqual([rgb.c, Array.from(rgb.data)], [3, [0, 51, 255, 128, 0, 51, 255, 128, 0, 51, 255, 128]]);
  const g = new Grayscale(1).apply(rgb);
  assert.deepEqual(Array.from(g.data), [0, 51, 255, 128]);
  const rgba: Image = { data: new Uint8Array([1, 2, 3, 4]), c: 4, h: 1, w: 1 };
  assert.deepEqual(Array.from(new ToRGB().apply(rgba).data), [1, 2, 3]);
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(-0.5), -0);
});

test('a composed pipeline survives spec() -> transformFromSpec() with identical seeded output', async () => {
  const t = compose(
    new ToRGB(),
    new RandomResizedCrop(20, { scale: [0.5, 1] }),
    new RandomHorizontalFlip(),
    new RandomCrop(20, { padding: 2, paddingMode: 'reflect' }),
    new ToFloat(),
    Normalize.imagenet(),
    new RandomErasing(0.7),
  );
  const back = await transformFromSpec(JSON.parse(JSON.stringify(t.spec())));
  const src = img('fm_u8', true);
  for (let s = 0; s < 5; s++) assert.deepEqual(back.apply(src, new RNG(s)).data, t.apply(src, new RNG(s)).data);
});
