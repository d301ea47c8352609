"""Explanations past the chapter's examples: odd image modes and shapes, the ONNX backend refused, and
`imgcls explain` as the console script runs it (`cli.main` in this process: loading torch again in a subprocess
would cost 10 s and test nothing of this command): corrupt files, a CSV list, an unknown target."""
import csv
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from imgcls_nb.core import ImgclsError
from imgcls_nb.explain import explain, torch_classifier
from imgcls_nb.train import sample_bundle

@pytest.fixture(scope='module')
def clf(): return torch_classifier(sample_bundle())

def _png(img, path):
    img.save(path)
    return path

def test_odd_modes_and_shapes_map_to_their_own_grid(clf, tmp_path):
    "Each map has the decoded image's height x width, whatever the mode, size or EXIF orientation"
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 70, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: shown 40 wide, 70 high
    rgb.save(tmp_path/'rot.jpg', exif=exif)
    cases = {
        _png(rgb.convert('L'), tmp_path/'gray.png'): (40, 70),
        _png(rgb.convert('RGBA'), tmp_path/'alpha.png'): (40, 70),
        _png(Image.fromarray((rng.integers(0, 65535, (30, 20))).astype(np.uint16)), tmp_path/'i16.png'): (30, 20),
        _png(rgb.convert('P'), tmp_path/'pal.png'): (40, 70),
        _png(Image.new('RGB', (1, 1), 'red'), tmp_path/'one.png'): (1, 1),
        _png(Image.new('RGB', (900, 12), 'white'), tmp_path/'strip.png'): (12, 900),
        tmp_path/'rot.jpg': (70, 40),
    }
    for e,(path, shape) in zip(explain(clf, list(cases)), cases.items()):
        assert e.error is None and e.heatmap.shape == shape and e.overlay.size == shape[::-1], (path, e)
        assert e.heatmap.dtype == np.float32 and np.isfinite(e.heatmap).all()

def test_bad_inputs_keep_their_place(clf, tmp_path):
    (tmp_path/'empty.png').write_bytes(b'')
    (tmp_path/'trunc.png').write_bytes(_png(Image.new('RGB', (50, 50)), tmp_path/'ok.png').read_bytes()[:40])
    out = explain(clf, [tmp_path/'empty.png', tmp_path/'ok.png', tmp_path/'missing.png', tmp_path/'trunc.png'])
    assert [e.error is None for e in out] == [False, True, False, False]
    assert all(e.error for e in out if e.heatmap is None) and out[1].heatmap.shape == (50, 50)

def test_onnx_backend_is_refused_with_the_fix():
    from imgcls_nb.runtime import OnnxClassifier
    onnx = OnnxClassifier.__new__(OnnxClassifier)
    onnx.path = Path('some/bundle')
    with pytest.raises(ImgclsError, match=r"load_bundle\('some/bundle', 'torch'\)"): explain(onnx, Image.new('RGB', (8, 8)))

def test_target_by_index_and_label_agree(clf):
    img = Image.new('RGB', (60, 40), 'gray')
    a, b = explain(clf, img, target=3), explain(clf, img, target=clf.classes[3])
    assert a.target == b.target == clf.classes[3]
    np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)

def test_command_with_corrupt_files_and_csv(fm, tmp_path, capsys):
    from imgcls_nb.cli import main
    src = tmp_path/'in'
    src.mkdir()
    files = sorted((fm/'valid'/'bag').iterdir())[:2]
    for f in files: (src/f.name).write_bytes(f.read_bytes())
    (src/'corrupt.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    (tmp_path/'list.csv').write_text('path\n' + str(files[0]) + '\nnot_there.png\n')
    code = main(['explain', str(sample_bundle()), str(src), str(tmp_path/'list.csv'), '--out', str(tmp_path/'maps')])
    err = capsys.readouterr().err
    assert code == 0, err
    assert 'corrupt.jpg: ' in err and 'not_there.png: ' in err and 'explained 3 images' in err
    rows = list(csv.DictReader(open(tmp_path/'maps'/'explanations.csv')))
    assert len(rows) == 5 and sum(bool(x['error']) for x in rows) == 2
    for x in rows:
        if x['error']: continue
        m, ov = np.load(tmp_path/'maps'/x['map']), Image.open(tmp_path/'maps'/x['overlay'])
        assert m.shape == Image.open(x['path']).size[::-1] and ov.size == Image.open(x['path']).size

def test_unknown_target_is_one_line_naming_the_labels(fm, tmp_path, capsys):
    from imgcls_nb.cli import main
    code = main(['explain', str(sample_bundle()), str(fm/'valid'/'bag'), '--out', str(tmp_path/'m'), '--target', 'hat'])
    err = capsys.readouterr().err
    assert code == 1 and "target 'hat' is not a label" in err and 'ankle-boot' in err, err
    assert not (tmp_path/'m').exists()

def test_missing_grad_cam_names_the_extra(fm, tmp_path, capsys, monkeypatch):
    import sys
    from imgcls_nb.cli import main
    monkeypatch.setitem(sys.modules, 'pytorch_grad_cam', None)  # as if grad-cam were not installed
    code = main(['explain', str(sample_bundle()), str(sorted((fm/'valid'/'bag').iterdir())[0]), '--out', str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "pip install 'imgcls_nb[explain]'" in err, err
