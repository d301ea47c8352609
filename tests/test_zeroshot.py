"Zero-shot CLIP classifier: pipeline parity, text-embedding cache, ensembling, multi-label, bad files, offline errors"
import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')  # no test may reach the network
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from imgcls_nb.core import ImgclsError, DataError, WeightsNotFoundError
from imgcls_nb.bundle import Prediction, UNKNOWN
from imgcls_nb.data import from_folder, load_image
from imgcls_nb import zeroshot as Z

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

FM_LABELS = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']

@pytest.fixture(scope='module', autouse=True)
def _offline_and_few_threads():
    from huggingface_hub import constants
    old, n = constants.HF_HUB_OFFLINE, torch.get_num_threads()
    constants.HF_HUB_OFFLINE = True  # in case transformers was imported before this module set the variable
    torch.set_num_threads(1)
    yield
    constants.HF_HUB_OFFLINE = old
    torch.set_num_threads(n)

@pytest.fixture(autouse=True)
def _fresh_memory_cache():
    Z.clear_text_cache()
    yield
    Z.clear_text_cache()

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return Z.tiny_clip(tmp_path_factory.mktemp('zs')/'tiny-clip')

@pytest.fixture(scope='module')
def images(tmp_path_factory, fm):
    "Real images: colour photos from scikit-image (JPEG and PNG) and grey Fashion-MNIST PNGs"
    import skimage.data
    d = tmp_path_factory.mktemp('zs-images')
    out = []
    for name, ext in [('chelsea', 'jpg'), ('coffee', 'png'), ('astronaut', 'jpg'), ('rocket', 'png')]:
        p = d/f'{name}.{ext}'
        Image.fromarray(getattr(skimage.data, name)()).save(p)
        out.append(str(p))
    return out + [str(p) for p in sorted(fm.glob('valid/*/*.png'))[::40]]

def count_text_calls(model) -> list:
    calls, f = [], model.get_text_features
    model.get_text_features = lambda *a, **k: calls.append(1) or f(*a, **k)
    return calls

def pipeline_scores(pipe, image, labels, template=None):
    kw = {} if template is None else dict(hypothesis_template=template)
    out = pipe(image, candidate_labels=labels, **kw)
    return out, np.array([{d['label']: d['score'] for d in out}[l] for l in labels])

# --- parity with transformers ----------------------------------------------------------------------

@pytest.mark.parametrize('template', ['{}', 'a photo of a {}.', None])
def test_scores_match_the_transformers_pipeline(tiny, images, template):
    from transformers import pipeline
    pipe = pipeline('zero-shot-image-classification', model=str(tiny))
    labels = ['cat', 'coffee', 'astronaut', 'rocket'] + FM_LABELS
    zs = Z.ZeroShotClassifier(labels, tiny, templates=[template or 'This is a photo of {}.'])  # the pipeline's own default
    ours, errors = zs.predict_proba(images, bs=3)
    assert errors == [None]*len(images)
    for i, path in enumerate(images):
        out, ref = pipeline_scores(pipe, path, labels, template)
        assert np.abs(ours[i] - ref).max() < 1e-5, (path, np.abs(ours[i] - ref).max())
        assert zs.predict(path).label == out[0]['label']  # the pipeline sorts its answer best first
    assert ours.max() > 0.3 and ours.min() < 0.02  # the tiny model's scores are far from uniform: parity means something

def test_logits_are_the_models_logits_per_image(tiny, images):
    zs = Z.ZeroShotClassifier(['cat', 'dog', 'car'], tiny, templates=['a photo of a {}.'])
    imgs = [load_image(p) for p in images[:4]]
    inputs = zs.processor(text=[f'a photo of a {l}.' for l in zs.classes], images=imgs, return_tensors='pt', padding=True)
    with torch.inference_mode(): ref = zs.model(**inputs).logits_per_image.numpy()
    x = np.stack([zs.spec(im) for im in imgs])
    assert np.abs(zs.predict_logits(x) - ref).max() < 1e-4
    assert np.abs(zs.similarity(x)*zs.logit_scale - ref).max() < 1e-4
    assert zs.logit_scale == pytest.approx(10.0, rel=1e-5)

# --- text embeddings: cache and ensembling ---------------------------------------------------------

def test_one_text_pass_for_many_images(tiny, images):
    zs = Z.ZeroShotClassifier(FM_LABELS, tiny, text_bs=32)  # 10 labels x 8 templates = 80 prompts = 3 calls
    calls = count_text_calls(zs.model)
    zs.predict_proba(images, bs=2)
    zs.predict(images[:3], top_k=3)
    assert len(calls) == 3
    again = zs.with_labels(FM_LABELS)
    again.predict_proba(images[:2])
    assert len(calls) == 3  # same model, labels and templates: from memory
    zs.with_labels(FM_LABELS[:3]).predict_proba(images[:2])
    assert len(calls) == 4  # other labels: one more (24-prompt) pass

def test_disk_cache_round_trip_keyed_by_labels_and_templates(tiny, images, tmp_path):
    cache = tmp_path/'cache'
    zs = Z.ZeroShotClassifier(['cat', 'dog'], tiny, cache_dir=cache)
    calls = count_text_calls(zs.model)
    first = zs.text_embeds.copy()
    files = sorted(cache.iterdir())
    assert len(calls) == 1 and len(files) == 1 and files[0].suffix == '.npz'
    with np.load(files[0]) as z:
        assert z['labels'].tolist() == ['cat', 'dog'] and z['templates'].tolist() == list(Z.DEFAULT_TEMPLATES)
        np.testing.assert_array_equal(z['embeddings'], first)
    Z.clear_text_cache()  # a new session
    np.testing.assert_array_equal(zs.text_embeds, first)
    assert len(calls) == 1  # read back from disk, no text pass
    p1 = zs.predict_proba(images[:2])[0]
    Z.clear_text_cache()
    np.testing.assert_array_equal(Z.ZeroShotClassifier(['cat', 'dog'], tiny, cache_dir=cache).predict_proba(images[:2])[0], p1)
    zs.with_labels(['dog', 'cat']).text_embeds       # order matters: other key
    zs.with_labels(['cat', 'dog'], ['{}']).text_embeds  # other templates: other key
    assert len(calls) == 3 and len(list(cache.glob('*.npz'))) == 3
    assert not [p for p in cache.iterdir() if p.suffix != '.npz']  # atomic writes leave no temporary files

def test_damaged_cache_file_is_recomputed(tiny, tmp_path, caplog):
    zs = Z.ZeroShotClassifier(['cat', 'dog'], tiny, cache_dir=tmp_path)
    good = zs.text_embeds.copy()
    f, = tmp_path.glob('*.npz')
    f.write_bytes(b'PK\x03\x04 not a zip file')
    Z.clear_text_cache()
    calls = count_text_calls(zs.model)
    np.testing.assert_allclose(zs.text_embeds, good, atol=1e-6)
    assert len(calls) == 1 and 'unreadable text-embedding cache' in caplog.text
    with np.load(f) as z: np.testing.assert_allclose(z['embeddings'], good, atol=1e-6)  # rewritten

def test_cache_key_follows_the_weights_not_the_folder(tiny, tmp_path):
    import shutil
    m, p = Z.load_clip(tiny)
    fp = Z.model_fingerprint(m, p)
    shutil.copytree(tiny, tmp_path/'moved')
    assert Z.model_fingerprint(*Z.load_clip(tmp_path/'moved')) == fp
    with torch.no_grad(): m.text_projection.weight[0, 0] += 1e-3
    assert Z.model_fingerprint(m, p) != fp
    k = Z.text_cache_key(fp, ['a', 'b'], ['{}'])
    assert len({k, Z.text_cache_key(fp, ['b', 'a'], ['{}']), Z.text_cache_key(fp, ['a', 'b'], ['{}.']), Z.text_cache_key('x', ['a', 'b'], ['{}'])}) == 4

def test_template_ensemble_is_mean_of_unit_embeddings(tiny):
    templates = ['a photo of a {}.', 'art of the {}.', 'a bad photo of the large {}.']
    zs = Z.ZeroShotClassifier(['cat', 'sandal'], tiny, templates=templates)
    tok = zs.processor.tokenizer
    for i, label in enumerate(zs.classes):
        with torch.inference_mode():  # each prompt alone, unpadded
            e = np.stack([Z._features(zs.model.get_text_features(**tok([t.format(label)], return_tensors='pt')))[0].numpy() for t in templates])
        e = e/np.linalg.norm(e, axis=1, keepdims=True)
        want = e.mean(0)/np.linalg.norm(e.mean(0))
        np.testing.assert_allclose(zs.text_embeds[i], want, atol=1e-5)
        assert np.abs(want - e[0]).max() > 1e-2  # the ensemble is not just the first template
    np.testing.assert_allclose(np.linalg.norm(zs.text_embeds, axis=1), 1, atol=1e-6)

def test_templates_and_labels_are_checked(tiny, tmp_path):
    for bad in ['no placeholder', 'two {} {}', 'a {name}', []]:
        with pytest.raises(ImgclsError, match='exactly one'): Z.ZeroShotClassifier(['cat'], tiny, templates=bad)
    with pytest.raises(DataError, match='more than once'): Z.parse_labels(['cat', 'dog', 'cat'])
    with pytest.raises(DataError, match='no labels'): Z.parse_labels(' , ')
    with pytest.raises(DataError, match='no such templates file'): Z.read_templates(tmp_path/'missing.txt')
    with pytest.raises(ValueError, match='task must be'): Z.ZeroShotClassifier(['cat'], tiny, task='multilabel')

# --- decisions -------------------------------------------------------------------------------------

def test_multi_label_sigmoid_of_similarity_minus_cutoff(tiny, images):
    zs = Z.ZeroShotClassifier(FM_LABELS, tiny, task='multi_label', sim_cutoff=0.1, thresholds=0.3)
    x = np.stack([zs.spec.load(p) for p in images[:5]])
    p = zs.predict_proba(images[:5])[0]
    np.testing.assert_allclose(p, 1/(1 + np.exp(-zs.logit_scale*(zs.similarity(x) - 0.1))), atol=1e-5)
    assert np.abs(p.sum(1) - 1).max() > 0.1  # independent per label, not a softmax
    np.testing.assert_array_equal(zs.thresholds, np.full(10, 0.3))
    for pred, row in zip(zs.predict(images[:5]), p):
        assert pred.labels == [c for c, q in zip(FM_LABELS, row) if q >= 0.3] and pred.label == ';'.join(pred.labels)
    default = zs.with_labels(FM_LABELS)
    np.testing.assert_array_equal(default.thresholds, np.full(10, 0.5))
    assert Z.ZeroShotClassifier(['cat'], tiny, task='multi_label').cfg['sim_cutoff'] == Z.SIM_CUTOFF == 0.28
    with pytest.raises(ValueError, match='3 thresholds given for 10 labels'): zs.with_labels(FM_LABELS, thresholds=[0.5]*3)

def test_multi_label_uses_a_models_logit_bias(tiny, images):
    zs = Z.ZeroShotClassifier(FM_LABELS, tiny, task='multi_label')
    zs.model.logit_bias = torch.nn.Parameter(torch.tensor([-1.5]))  # as SigLIP models have
    x = np.stack([zs.spec.load(p) for p in images[:3]])
    np.testing.assert_allclose(zs.predict_proba(images[:3])[0], 1/(1 + np.exp(-(zs.logit_scale*zs.similarity(x) - 1.5))), atol=1e-5)
    single = zs.with_labels(FM_LABELS); single.task = single.cfg['task'] = 'single_label'
    s = zs.logit_scale*zs.similarity(x)
    np.testing.assert_allclose(single.predict_proba(images[:3])[0], np.exp(s)/np.exp(s).sum(1, keepdims=True), atol=1e-5)  # bias cancels

def test_unknown_threshold_and_tta(tiny, images):
    zs = Z.ZeroShotClassifier(FM_LABELS, tiny, unknown_threshold=0.99)
    assert all(p.label == UNKNOWN for p in zs.predict(images[:3]))
    x = np.stack([zs.spec.load(p) for p in images[:3]])
    want = (zs.predict_arrays(x) + zs.predict_arrays(x[..., ::-1].copy()))/2
    np.testing.assert_allclose(zs.predict_proba(images[:3], tta=True)[0], want, atol=1e-6)

def test_bad_files_get_an_error_not_a_crash(tiny, images, tmp_path):
    (tmp_path/'broken.png').write_bytes(b'\x89PNG not really')
    (tmp_path/'empty.jpg').write_bytes(b'')
    data = Path(images[0]).read_bytes()
    (tmp_path/'truncated.jpg').write_bytes(data[:len(data)//3])
    inputs = [images[0], tmp_path/'broken.png', tmp_path/'empty.jpg', tmp_path/'missing.png', images[1], Image.open(images[2]), data]
    zs = Z.ZeroShotClassifier(['cat', 'coffee', 'astronaut'], tiny)
    probs, errors = zs.predict_proba(inputs, bs=4)
    assert [e is None for e in errors] == [True, False, False, False, True, True, True]
    assert 'not an image' in errors[1] and 'empty file' in errors[2] and 'file not found' in errors[3]
    assert np.isnan(probs[[1, 2, 3]]).all() and not np.isnan(probs[[0, 4, 5, 6]]).any()
    np.testing.assert_allclose(probs[0], probs[6], atol=1e-6)  # bytes and path of the same file
    preds = zs.predict(inputs)
    assert all(isinstance(p, Prediction) for p in preds) and preds[1].label is None and preds[1].error == errors[1]
    assert (preds[5].source, preds[6].source) == ('<image 5>', '<image 6>')
    assert isinstance(zs.predict(images[0]), Prediction)  # one input, one Prediction
    t = zs.predict([tmp_path/'truncated.jpg'])[0]
    assert t.error is None or 'truncated' in t.error

# --- errors a user can act on ----------------------------------------------------------------------

def test_missing_local_folder(tmp_path):
    with pytest.raises(WeightsNotFoundError) as e: Z.ZeroShotClassifier(['cat'], tmp_path/'no-clip-here')
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path/'no-clip-here'}: no such folder") and 'save_pretrained' in msg
    (tmp_path/'empty').mkdir()
    with pytest.raises(WeightsNotFoundError, match='not a complete model folder'): Z.load_clip(tmp_path/'empty')

def test_hub_id_offline_names_the_model_and_the_fix():
    with pytest.raises(WeightsNotFoundError) as e: Z.ZeroShotClassifier(['cat'], 'imgcls-nb/clip-that-is-not-cached')
    msg = str(e.value)
    assert msg.startswith('imgcls-nb/clip-that-is-not-cached: not in the Hugging Face cache')
    assert 'HF_HUB_OFFLINE is set' in msg and 'HF_HOME' in msg and "m='imgcls-nb/clip-that-is-not-cached'" in msg

def test_module_imports_without_transformers_or_torch():
    code = ("import sys; sys.modules['transformers'] = None\n"
            "import imgcls_nb.zeroshot as z\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert z.check_templates('a {}') == ['a {}']\n"
            "try: z.load_clip('x')\n"
            "except z.ImgclsError as e: print(e)\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "pip install 'imgcls_nb[zeroshot]'" in r.stdout

# --- the same interfaces as a bundle ---------------------------------------------------------------

def test_evaluate_works_on_the_zero_shot_classifier(tiny, fm):
    from imgcls_nb.evaluate import evaluate
    src = from_folder(fm)
    zs = Z.ZeroShotClassifier(src.classes, tiny, templates=['a photo of a {}.'])
    res = evaluate(zs, src, bs=64)
    assert res.probs.shape == (len(src.valid), 10) and res.classes == src.classes and res.errors == []
    assert 0 <= res.metrics['accuracy'] <= 1 and res.metrics['temperature'] == 1.0
    ml = evaluate(Z.ZeroShotClassifier(src.classes, tiny, task='multi_label'), src, bs=64)
    assert 'map' in ml.metrics and len(ml.metrics['thresholds']) == 10

def test_zeroshot_predict_streams_rows(tiny, images, tmp_path):
    (tmp_path/'labels.txt').write_text('cat\ncoffee\nrocket\n')
    (tmp_path/'templates.txt').write_text('a photo of a {}.\n# a comment\nart of the {}.\n')
    (tmp_path/'bad.jpg').write_bytes(b'nope')
    from imgcls_nb.predict import zeroshot_predict
    r = zeroshot_predict(images[:4] + [str(tmp_path/'bad.jpg')], tmp_path/'labels.txt', tiny, tmp_path/'templates.txt',
                         out=tmp_path/'out.jsonl', top_k=2)
    rows = [json.loads(l) for l in (tmp_path/'out.jsonl').read_text().splitlines()]
    assert (r['classified'], r['unreadable'], len(rows)) == (4, 1, 5)
    assert {row['label'] for row in rows[:4]} <= {'cat', 'coffee', 'rocket'} and rows[4]['error'] and rows[4]['label'] is None
    ref = Z.ZeroShotClassifier(['cat', 'coffee', 'rocket'], tiny, ['a photo of a {}.', 'art of the {}.']).predict(images[:4])
    assert [row['label'] for row in rows[:4]] == [p.label for p in ref]
    assert [row['score'] for row in rows[:4]] == pytest.approx([p.score for p in ref], abs=1e-6)

def test_tiny_clip_is_deterministic(tmp_path):
    a, b = Z.tiny_clip(tmp_path/'a', seed=1), Z.tiny_clip(tmp_path/'b', seed=1)
    assert (a/'model.safetensors').read_bytes() == (b/'model.safetensors').read_bytes()
    assert (a/'model.safetensors').read_bytes() != Z.tiny_clip(tmp_path/'c', seed=2).joinpath('model.safetensors').read_bytes()
