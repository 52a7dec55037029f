"""Group words: products against brute-force permutation composition, the groups' structure, the baselines and the
trivial flags by hand, determinism, the depth slices a model is scored on, bad input."""

import itertools
import json

import numpy as np
import pytest
from helpers import one_line_error, run

import generators
from generators.group_words import elements, generating_set, multiplication_table, prefix_products, window_products
from testbed.metrics import slice_groups


def compose(a, b):
    """(a b)(i) = a(b(i)), written out."""
    return tuple(a[b[i]] for i in range(len(a)))


@pytest.mark.parametrize("group", ["S5", "A5", "S3", "Z7"])
def test_prefix_products_are_brute_force_compositions(group):
    gen = generators.make("group_words", {"group": group, "length": 19})
    ex = gen.sample("test", 3, np.arange(30))
    perms = [tuple(int(x) for x in p) for p in elements(group)]
    for word, target in zip(ex["inputs"], ex["targets"]):
        p = perms[0]  # the identity
        for g, t in zip(word, target):
            p = compose(p, perms[g])
            assert perms[t] == p


@pytest.mark.parametrize("group, order", [("Z5", 5), ("S3", 6), ("A4", 12), ("S4", 24), ("A5", 60), ("S5", 120)])
def test_each_table_is_a_group_of_the_right_order(group, order):
    table = multiplication_table(group)
    assert table.shape == (order, order)
    assert (table[0] == np.arange(order)).all() and (table[:, 0] == np.arange(order)).all()  # identity first
    assert all((np.sort(row) == np.arange(order)).all() for row in table)  # a Latin square: inverses exist
    a, b, c = np.meshgrid(*[np.arange(order)] * 3, indexing="ij") if order <= 24 else np.random.default_rng(0).integers(
        0, order, (3, 5000))
    assert (table[table[a, b], c] == table[a, table[b, c]]).all()  # associative
    abelian = (table == table.T).all()
    assert abelian == (group[0] == "Z")
    # the derived series (commutator subgroups) ends at the identity exactly for the solvable groups
    inv = np.argmin(table, axis=1)  # the identity is index 0, so a's inverse is where its row holds 0
    members = set(range(order))
    for _ in range(6):
        comm = {int(table[table[x, y], table[inv[x], inv[y]]]) for x in members for y in members}
        closure = set(comm)
        while True:
            grown = closure | {int(table[x, y]) for x in closure for y in closure}
            if grown == closure:
                break
            closure = grown
        if closure == members:
            break
        members = closure
    assert (members == {0}) == (group not in ("A5", "S5"))
    if group in ("A5", "S5"):
        assert len(members) == 60  # A5 is perfect: the series stalls there


def test_the_scan_matches_a_sequential_product_and_windows_are_local():
    table = multiplication_table("S4")
    words = np.random.default_rng(1).integers(0, 24, (50, 37))
    seq = np.zeros_like(words)
    p = np.zeros(50, np.int64)
    for t in range(37):
        p = table[p, words[:, t]]
        seq[:, t] = p
    assert (prefix_products(words, table) == seq).all()
    w3 = window_products(words, table, 3)
    assert (w3[:, :3] == seq[:, :3]).all()  # the first m positions: the whole prefix
    assert (w3[:, 10] == table[table[words[:, 8], words[:, 9]], words[:, 10]]).all()


def test_baselines_and_trivial_flags_by_hand():
    gen = generators.make("group_words", {"group": "Z5", "length": 4, "window": 2})
    ex = gen.format(np.array([[1, 2, 3, 0], [0, 0, 4, 1]]))
    assert ex["targets"].tolist() == [[1, 3, 1, 1], [0, 0, 4, 0]]
    base = gen.baselines(ex)
    assert base["most_frequent"].tolist() == [[0] * 4] * 2
    assert base["last_m"].tolist() == [[1, 3, 0, 3], [0, 0, 4, 0]]
    # trivial where a baseline is right: the first two positions (window), and coincidences beyond
    assert ex["trivial"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert ex["step"].tolist() == [[1, 2, 3, 4]] * 2  # the prefix length is the depth
    # fresh: a product the walk has not been at (the identity counts as visited) that no baseline gets
    assert ex["fresh"].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]
    walk = gen.format(np.array([[1, 1, 1, 1], [1, 4, 4, 2]]))  # products 1 2 3 4; 1 0 4 1 (the last: a window's)
    assert walk["trivial"].tolist() == [[1, 1, 0, 0], [1, 1, 0, 1]]
    assert walk["fresh"].tolist() == [[0, 0, 1, 1], [0, 0, 1, 0]]


@pytest.mark.parametrize("group, size, moved", [("S5", 11, 2), ("A5", 21, 3), ("S3", 4, 2), ("Z5", 2, None)])
def test_words_over_a_generating_set(group, size, moved):
    """The swaps of S_n, the 3-cycles of A_n, the unit rotation of Z_m, each with the identity; the words use them
    alone, and the most_frequent baseline is the mode of the products' distribution, enumerated by brute force."""
    perms = [tuple(int(x) for x in p) for p in elements(group)]
    alphabet = generating_set(group)
    assert len(alphabet) == size and alphabet[0] == 0
    if moved:
        assert all(sum(p[i] != i for i in range(len(p))) == moved for p in (perms[a] for a in alphabet[1:]))
    else:
        assert perms[alphabet[1]] == (1, 2, 3, 4, 0)
    length = 3
    gen = generators.make("group_words", {"group": group, "length": length, "alphabet": "generators"})
    ex = gen.sample("train", 0, np.arange(500))
    assert set(np.unique(ex["inputs"])) == set(alphabet.tolist())
    counts = np.zeros((length, len(perms)))
    for word in itertools.product(alphabet.tolist(), repeat=length):  # every word, equally likely
        p = perms[0]
        for t, g in enumerate(word):
            p = compose(p, perms[g])
            counts[t, perms.index(p)] += 1
    expected = counts / counts.sum(1, keepdims=True)
    assert np.allclose(gen.product_distribution(length), expected)
    modes = [int(np.flatnonzero(row == row.max())[0]) for row in counts]
    assert (gen.baselines(ex)["most_frequent"] == modes).all()


def test_deterministic_disjoint_streams_and_depth_slices():
    gen = generators.make("group_words", {"group": "S5", "length": 16})
    a, b = gen.sample("train", 0, np.arange(200)), gen.sample("train", 0, np.arange(200))
    assert all((a[k] == b[k]).all() for k in a)
    assert (gen.sample("train", 0, [7])["inputs"] == a["inputs"][7]).all()  # an example depends on its index alone
    assert not (gen.sample("test", 0, np.arange(200))["inputs"] == a["inputs"]).all()
    counts = np.bincount(a["inputs"].ravel(), minlength=120)
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()  # uniform words
    name, groups = slice_groups(a)
    assert name == "k" and (groups[0] == np.arange(1, 17)).all()  # results rows per prefix length
    last = generators.make("group_words", {"group": "S5", "length": 16, "targets": "last"}).sample("val", 0, [0, 1])
    assert last["loss_mask"].sum() == 2 and last["loss_mask"][:, -1].all()


@pytest.mark.parametrize("args, message", [
    (["--group", "Q8"], "unknown group 'Q8'"),
    (["--group", "S7"], "unknown group 'S7'"),
    (["--group", "Z1"], "m must be in 2..1024"),
    (["--length", "0"], "length must be at least 1"),
    (["--length", "4", "--window", "5"], "window must be in 1..length (4)"),
    (["--targets", "middle"], "unknown targets 'middle'"),
    (["--alphabet", "swaps"], "unknown alphabet 'swaps'"),
])
def test_bad_group_words_are_one_line_errors(args, message, tmp_path):
    one_line_error(run("gen", "group_words", *args, "--n", 2, "--out", tmp_path / "w.npz"), message)
    assert not list(tmp_path.iterdir())


def test_gen_writes_and_shows_group_words(tmp_path):
    res = run("gen", "group_words", "--group", "A5", "--length", 8, "--n", 5, "--out", tmp_path / "w.npz", "--show", 1)
    assert res.exit_code == 0, res.output
    assert "element→prefix product" in res.output
    with np.load(tmp_path / "w.npz", allow_pickle=False) as f:
        assert f["inputs"].shape == (5, 8) and f["targets"].max() < 60


@pytest.mark.slow
def test_a_model_trains_on_group_words_and_is_scored_per_length(tmp_path, tiny_spec):
    spec = tiny_spec(data={"generator": "group_words", "group": "S3", "length": 6}, model={"pos": "learned"},
                     eval={"k": []})
    res = run("train", spec, "--out", tmp_path)
    assert res.exit_code == 0, res.output

    run_dir = next(p for p in tmp_path.iterdir() if (p / "result.json").is_file())
    result = json.loads((run_dir / "result.json").read_text())
    assert [r["value"] for r in result["test"] if r["slice"] == "k"] == [1, 2, 3, 4, 5, 6]
    assert set(result["baselines"]) == {"baseline:most_frequent", "baseline:last_m"}
    first = next(r for r in result["baselines"]["baseline:last_m"] if r["slice"] == "k" and r["value"] == 1)
    assert first["exact_match"] == 1.0  # a one-element prefix is its own product
