"Bad input and search parity for the label audit (chapter 16_audit) and its commands"
import contextlib, io, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest
from imgcls_nb.core import BundleError, DataError
from imgcls_nb.audit import audit, SimilarityIndex, AUDIT_COLUMNS, review_order
from imgcls_nb.cli import main
from imgcls_nb.data import from_df
from conftest import tree

@pytest.fixture
def small(tmp_path, fm) -> Path:
    "Two classes of the sample's validation images (40 files) with three broken files among them"
    d = tmp_path/'small'
    for c in ('bag', 'sandal'): shutil.copytree(fm/'valid'/c, d/c)
    (d/'bag'/'empty.png').write_bytes(b'')
    (d/'bag'/'notes.png').write_text('not an image')
    (d/'sandal'/'cut.png').write_bytes((fm/'valid'/'sandal'/sorted(p.name for p in (fm/'valid'/'sandal').iterdir())[0])
                                       .read_bytes()[:60])
    return d

@pytest.fixture(scope='module')
def cache(tmp_path_factory): return tmp_path_factory.mktemp('features')

def test_audit_lists_corrupt_files_with_reasons_and_moves_nothing(small, tmp_path, cache):
    before = tree(small)
    t = audit(small, cache=cache, progress=False)
    assert tree(small) == before and not (tmp_path/'small_quarantine').exists()
    assert list(t.columns) == AUDIT_COLUMNS
    bad = t[t.error != ''].set_index(t.path[t.error != ''].map(lambda p: Path(p).name)).error
    assert sorted(bad.index) == ['cut.png', 'empty.png', 'notes.png'] and bad['empty.png'] == 'empty file (0 bytes)'
    ok = t[t.error == '']
    assert len(ok) == 40 and ok.label_quality.between(0, 1).all() and ok.outlier_score.notna().all()
    assert len(review_order(t)) == 40  # the unreadable files are not offered for review

def test_audit_with_a_missing_bundle_says_so(small, tmp_path):
    with pytest.raises(BundleError, match='not a bundle folder'): audit(small, bundle=tmp_path/'nowhere', progress=False)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(['audit', str(small), '--out', str(tmp_path/'a.csv'), '--bundle', str(tmp_path/'nowhere')]) == 1
    assert 'imgcls audit: error:' in err.getvalue() and not (tmp_path/'a.csv').exists()

def test_audit_of_a_missing_folder_is_an_error(tmp_path):
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(['audit', str(tmp_path/'none'), '--out', str(tmp_path/'a.csv')]) == 1
    assert 'not a folder' in err.getvalue()

def test_similar_without_an_index_says_how_to_build_one(tmp_path, fm):
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(['similar', str(tmp_path/'b'), str(fm/'valid'/'bag'), '--index', str(tmp_path/'idx')]) == 1
    assert 'no similarity index here' in err.getvalue() and '--images' in err.getvalue()

def test_faiss_and_numpy_give_the_same_neighbours():
    pytest.importorskip('faiss')
    e = np.random.default_rng(0).normal(size=(500, 64)).astype(np.float32)
    paths = [f'{i}.png' for i in range(500)]
    (s1, i1), (s2, i2) = [SimilarityIndex(e, paths, use_faiss=f).search_vectors(e[:50] + 0.01, 8) for f in (True, False)]
    assert (i1 == i2).all() and np.allclose(s1, s2, atol=1e-4) and (i1[:, 0] == np.arange(50)).all()
    assert SimilarityIndex(e, paths).search_vectors(e[:2], 1000)[1].shape == (2, 500)  # k capped at the index size

def test_index_round_trip_is_atomic_and_exact(tmp_path):
    e = np.random.default_rng(1).normal(size=(20, 8)).astype(np.float32)
    idx = SimilarityIndex(e, [f'{i}.png' for i in range(20)], bundle=tmp_path/'b')
    folder = idx.save(tmp_path/'idx')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['idx']  # no temporary folder left behind
    back = SimilarityIndex.load(folder)
    assert back.paths == idx.paths and np.array_equal(back.embeddings, e) and back.bundle == str(tmp_path/'b')
    with pytest.raises(DataError, match='no bundle'): SimilarityIndex(e, idx.paths).search([tmp_path/'x.png'])

def test_multi_label_audit_has_per_label_issues(small, cache):
    "A CSV source with ';'-separated tags: cleanlab's multi-label form, one issue per doubtful tag"
    rows = [(str(p), 'footwear;summer' if p.parent.name == 'sandal' else 'bag') for p in sorted(small.rglob('*.png'))]
    rows[0] = (rows[0][0], 'bag;summer')  # a bag tagged summer, like the sandals
    src = from_df(pd.DataFrame(rows, columns=['path', 'label']), label_delim=';')
    t = audit(src, cache=cache, progress=False)
    ok = t[t.error == '']
    assert len(ok) == 40 and set(ok.label) == {'bag', 'footwear;summer', 'bag;summer'}
    assert ok.label_issues[ok.path == rows[0][0]].item() == 'summer'
    assert set(';'.join(ok.label_issues).split(';')) <= {'', 'bag', 'footwear', 'summer'}

def test_similar_refuses_an_index_of_another_bundle(tmp_path, fm):
    e = np.random.default_rng(2).normal(size=(5, 8)).astype(np.float32)
    SimilarityIndex(e, [f'{i}.png' for i in range(5)], bundle=tmp_path/'other').save(tmp_path/'idx')
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(['similar', str(tmp_path/'b'), str(fm/'valid'/'bag'), '--index', str(tmp_path/'idx')]) == 1
    assert 'rebuild it with --images' in err.getvalue()
