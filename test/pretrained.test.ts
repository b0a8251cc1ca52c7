// The pretrained registry and its loader.
//  - Consistency: every entry's parameter count equals our model's numParameters(), its GFLOPS
//    our layer walk's MACs at 224x224, its URL's file name carries its SHA-256 prefix; the facts
//    and the 1000 class names equal torchvision's own (Debian's torchvision 0.14, when present).
//  - Loader, without network: an unreachable URL and a failing fetch give a DownloadError naming
//    the URL and where to put the file by hand; a stub fetch exercises download + progress + hash
//    check; a locally written .pth is a cache hit (fetch never called); a corrupt cache file and a
//    corrupt download give a FormatError and leave nothing behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, FormatError } from '../src/base/errors.js';
import { readPth } from '../src/io/pth.js';
import { IMAGENET_CLASSES, imagenetClassName } from '../src/models/imagenet-classes.js';
import { DownloadError, PRETRAINED, type PretrainedWeights, getPretrained, isPretrainedId, listPretrained } from '../src/models/pretrained.js';
import { downloadPretrained, loadPretrained } from '../src/models/pretrained-node.js';
import { createModel, listModels } from '../src/models/registry.js';
import { noGrad } from '../src/tensor/tensor.js';
import { PYTHON, pythonMissing, runPython } from './io-util.js';

const tmp = mkdtempSync(join(tmpdir(), 'resnet-pretrained-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('registry: 17 torchvision weight sets, each with a download.pytorch.org URL whose file name carries its 8-hex SHA-256 prefix', () => {
  assert.equal(PRETRAINED.length, 17);
  assert.equal(new Set(PRETRAINED.map((w) => w.id)).size, PRETRAINED.length);
  for (const w of PRETRAINED) {
    assert.ok(listModels().includes(w.model), `${w.id}: unknown model`);
    assert.equal(w.id, `${w.model}.${w.tag}`);
    assert.match(w.sha256Prefix, /^[0-9a-f]{8}$/, w.id);
    assert.equal(w.url, `https://download.pytorch.org/models/${w.fileName}`);
    assert.ok(w.fileName.startsWith(`${w.model}-`) && w.fileName.endsWith(`-${w.sha256Prefix}.pth`), `${w.id}: ${w.fileName}`);
    assert.ok(w.acc1 > 60 && w.acc1 < w.acc5 && w.acc5 < 100, `${w.id}: accuracies`);
    // torchvision's _file_size is in MiB; the files hold float32 (4 bytes a value) or, for the
    // Wide ResNet V1 sets, float16 (2 bytes) plus a little pickle overhead.
    const bytesPerParam = (w.fileSizeMB * 2 ** 20) / w.numParams;
    assert.ok(
      (bytesPerParam > 2 && bytesPerParam < 2.1) || (bytesPerParam > 4 && bytesPerParam < 4.1),
      `${w.id}: ${w.fileSizeMB} MiB for ${w.numParams} values`,
    );
    const p = w.preprocessing;
    assert.equal(p.cropSize, 224);
    assert.equal(p.interpolation, 'bilinear');
    assert.equal(p.resizeSize, w.tag === 'IMAGENET1K_V2' || w.model === 'resnext101_64x4d' ? 232 : 256, w.id);
    assert.deepEqual([...p.mean], [0.485, 0.456, 0.406]);
    assert.deepEqual([...p.std], [0.229, 0.224, 0.225]);
    assert.equal(w.categories.length, w.numClasses);
  }
  for (const model of new Set(PRETRAINED.map((w) => w.model))) {
    assert.equal(listPretrained(model).filter((w) => w.isDefault).length, 1, `${model}: one default`);
  }
});

test("registry: parameter counts equal our models' numParameters() and GFLOPS our MACs at 3x224x224", () => {
  for (const model of new Set(PRETRAINED.map((w) => w.model))) {
    const m = noGrad(() => createModel(model));
    const params = m.numParameters();
    const macs = m.describe([3, 224, 224], '').rows.reduce((a, r) => a + r.macs, 0);
    m.dispose();
    for (const w of listPretrained(model)) {
      assert.equal(w.numParams, params, `${w.id}: parameters`);
      assert.ok(Math.abs(macs / 1e9 - w.gflops) < 0.006, `${w.id}: ${w.gflops} GFLOPS vs our ${(macs / 1e9).toFixed(3)} GMACs`);
    }
  }
});

test('ImageNet class names: 1000 distinct names in the standard index order', () => {
  assert.equal(IMAGENET_CLASSES.length, 1000);
  assert.equal(new Set(IMAGENET_CLASSES).size, 1000);
  assert.equal(imagenetClassName(0), 'tench');
  assert.equal(imagenetClassName(207), 'golden retriever');
  assert.equal(imagenetClassName(999), 'toilet tissue');
  assert.throws(() => imagenetClassName(1000), RangeError);
});

const tvSkip = pythonMissing(['torchvision']);
test("facts and class names equal torchvision's own weight enums (Debian torchvision)", { skip: tvSkip ?? false }, () => {
  const code = String.raw`
import json, torchvision.models as M
from torchvision.models._meta import _IMAGENET_CATEGORIES
out = {'categories': list(_IMAGENET_CATEGORIES), 'weights': {}}
for enum in [M.ResNet18_Weights, M.ResNet34_Weights, M.ResNet50_Weights, M.ResNet101_Weights, M.ResNet152_Weights,
             M.ResNeXt50_32X4D_Weights, M.ResNeXt101_32X8D_Weights, M.ResNeXt101_64X4D_Weights,
             M.Wide_ResNet50_2_Weights, M.Wide_ResNet101_2_Weights]:
    for w in enum:
        t = w.transforms()
        m = w.meta['_metrics']['ImageNet-1K']
        out['weights'][w.url] = dict(tag=w.name, params=w.meta['num_params'], acc1=m['acc@1'], acc5=m['acc@5'],
            resize=t.resize_size[0], crop=t.crop_size[0], mean=list(t.mean), std=list(t.std), interp=str(t.interpolation),
            default=(enum.DEFAULT == w), recipe=w.meta['recipe'])
print(json.dumps(out))
`;
  const tv = JSON.parse(runPython(code)) as { categories: string[]; weights: Record<string, Record<string, unknown>> };
  assert.deepEqual([...IMAGENET_CLASSES], tv.categories);
  assert.equal(Object.keys(tv.weights).length, PRETRAINED.length);
  for (const w of PRETRAINED) {
    const t = tv.weights[w.url];
    assert.ok(t, `${w.id}: torchvision has no weights at ${w.url}`);
    assert.deepEqual(
      {
        tag: w.tag,
        params: w.numParams,
        acc1: w.acc1,
        acc5: w.acc5,
        resize: w.preprocessing.resizeSize,
        crop: w.preprocessing.cropSize,
        mean: [...w.preprocessing.mean],
        std: [...w.preprocessing.std],
        interp: 'InterpolationMode.BILINEAR',
        default: w.isDefault,
        recipe: w.recipe,
      },
      t,
      w.id,
    );
  }
});

test('ids: lookup, DEFAULT, and a ConfigError listing the choices for an unknown one', () => {
  assert.equal(getPretrained('resnet50').tag, 'IMAGENET1K_V2');
  assert.equal(getPretrained('resnet50.DEFAULT').id, 'resnet50.IMAGENET1K_V2');
  assert.equal(getPretrained('resnet18.DEFAULT').id, 'resnet18.IMAGENET1K_V1');
  assert.ok(isPretrainedId('wide_resnet50_2.IMAGENET1K_V2'));
  assert.ok(!isPretrainedId('weights/resnet50.safetensors'));
  assert.throws(
    () => getPretrained('resnet18.IMAGENET1K_V2'),
    (e: unknown) => e instanceof ConfigError && /known for resnet18: resnet18\.IMAGENET1K_V1/.test(e.message),
  );
  assert.throws(() => getPretrained('vgg16.IMAGENET1K_V1'), ConfigError);
});

/** An entry like resnet18's, for a local file with a known hash. */
function entryFor(bytes: Uint8Array, url = 'https://download.invalid/models/x.pth'): PretrainedWeights {
  const prefix = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  const w = getPretrained('resnet18.IMAGENET1K_V1');
  return { ...w, url, fileName: `resnet18-${prefix}.pth`, sha256Prefix: prefix };
}

function stubFetch(body: Uint8Array, calls: { n: number }, chunk = 65536): typeof fetch {
  return (async () => {
    calls.n++;
    let off = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (off >= body.length) return c.close();
        c.enqueue(body.slice(off, off + chunk));
        off += chunk;
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-length': String(body.length) } });
  }) as unknown as typeof fetch;
}

test('offline: a failing fetch and an unreachable URL give a DownloadError naming the URL and where to put the file', async () => {
  const dir = join(tmp, 'offline');
  const offline = (async () => {
    throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } });
  }) as unknown as typeof fetch;
  const w = getPretrained('resnet50.IMAGENET1K_V2');
  await assert.rejects(loadPretrained(w.id, { cacheDir: dir, fetch: offline, useTorchCache: false }), (e: unknown) => {
    assert.ok(e instanceof DownloadError, String(e));
    assert.ok(e.message.includes('https://download.pytorch.org/models/resnet50-11ad3fa6.pth'), e.message);
    assert.ok(e.message.includes(join(dir, 'resnet50-11ad3fa6.pth')), e.message);
    assert.match(e.message, /ENOTFOUND/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  // The real fetch against a closed local port (no network needed).
  const unreachable = { ...w, url: 'http://127.0.0.1:9/resnet50-11ad3fa6.pth' };
  await assert.rejects(
    downloadPretrained(unreachable, { cacheDir: dir, useTorchCache: false }),
    (e: unknown) => e instanceof DownloadError && e.message.includes('http://127.0.0.1:9/') && e.message.includes(join(dir, w.fileName)),
  );
  const notFound = (async () => new Response('no', { status: 404, statusText: 'Not Found' })) as unknown as typeof fetch;
  await assert.rejects(downloadPretrained(w, { cacheDir: dir, fetch: notFound, useTorchCache: false }), /HTTP 404 Not Found/);
  assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], 'nothing left in the cache');
});

test('download with a stub fetch: streamed to the cache with progress, hash-checked, then a cache hit without fetching', async () => {
  const dir = join(tmp, 'dl');
  const body = new Uint8Array(300_000).map((_, i) => (i * 7919) & 255);
  const w = entryFor(body);
  const calls = { n: 0 };
  const seen: [number, number | null][] = [];
  const path = await downloadPretrained(w, { cacheDir: dir, fetch: stubFetch(body, calls), onProgress: (r, t) => seen.push([r, t]), useTorchCache: false });
  assert.equal(path, join(dir, w.fileName));
  assert.deepEqual(new Uint8Array(readFileSync(path)), body);
  assert.deepEqual(seen[0], [0, body.length]);
  assert.deepEqual(seen[seen.length - 1], [body.length, body.length]);
  assert.ok(seen.length >= 5, 'progress reported per chunk');
  assert.equal(await downloadPretrained(w, { cacheDir: dir, fetch: stubFetch(body, calls), useTorchCache: false }), path);
  assert.equal(calls.n, 1, 'the second call is a cache hit');
  assert.deepEqual(readdirSync(dir), [w.fileName], 'no temporary file left');
});

test('a download whose SHA-256 does not match is refused and nothing is saved', async () => {
  const dir = join(tmp, 'bad');
  const body = new Uint8Array(1000).fill(1);
  const w = { ...entryFor(body), sha256Prefix: '00000000' };
  await assert.rejects(
    downloadPretrained(w, { cacheDir: dir, fetch: stubFetch(body, { n: 0 }), useTorchCache: false }),
    (e: unknown) => e instanceof FormatError && /does not start with 00000000/.test(e.message),
  );
  assert.deepEqual(readdirSync(dir), []);
});

const torchSkip = pythonMissing(['torch', 'torchvision']);
test(
  'cache hit: a .pth written by PyTorch into the cache loads into resnet18 without any fetch; a corrupted copy is refused',
  { skip: torchSkip ?? false },
  async () => {
    const src = join(tmp, 'r18.pth');
    runPython('import sys, torch, torchvision\ntorch.manual_seed(3)\ntorch.save(torchvision.models.resnet18().state_dict(), sys.argv[1])', [src]);
    const bytes = new Uint8Array(readFileSync(src));
    const w = entryFor(bytes);
    const dir = join(tmp, 'cache');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, w.fileName), bytes);
    const noFetch = (async () => assert.fail('fetch must not be called on a cache hit')) as unknown as typeof fetch;
    const r = await loadPretrained(w, { cacheDir: dir, fetch: noFetch, useTorchCache: false });
    assert.equal(r.path, join(dir, w.fileName));
    assert.equal(r.model.training, false);
    const want = readPth(bytes);
    const got = r.model.stateDict();
    assert.equal(got.size, want.size);
    for (const [k, a] of want) assert.deepEqual(got.get(k)!.dataSync(), a.data, k);
    // Flip one byte: the hash check refuses the cached file.
    const bad = bytes.slice();
    bad[bad.length >> 1] ^= 0xff;
    writeFileSync(join(dir, w.fileName), bad);
    await assert.rejects(
      loadPretrained(w, { cacheDir: dir, fetch: noFetch, useTorchCache: false }),
      (e: unknown) => e instanceof FormatError && e.message.includes(w.fileName) && /delete it to download again/.test(e.message),
    );
    void PYTHON;
  },
);
