"""The READMEs against the code: the figure tables are the generated ones, every command line parses, the worked
examples run, the module map names every module."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import typer

import generators
from testbed import figures
from testbed.cli import app
from testbed.models import MODELS
from testbed.results import pages

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "experiments" / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "docs" / "guide.md"]
PROSE = [ROOT / "README.md", ROOT / "experiments" / "README.md", ROOT / "docs" / "guide.md"]  # no typed results


def test_figure_tables_are_the_generated_ones():
    for path, table in figures.tables_of(ROOT).items():
        text = path.read_text()
        assert table in text, f"{path.name}: the figure table is stale; regenerate it with `testbed docs reproductions`"


def test_a_reproduction_that_reused_runs_does_not_pass_for_a_measured_time(tmp_path):
    meta = {"figure": "quickstart", "preset": "cpu", "wall_minutes": 0.4, "runs": 6, "runs_reused": 6, "cores": 2}
    (tmp_path / "quickstart.json").write_text(json.dumps(meta))
    row = next(line for line in figures.figure_table(tmp_path, "").splitlines() if line.startswith("| `quickstart`"))
    assert "estimate; the published reproduction reused finished runs" in row and "0.4 min" not in row
    (tmp_path / "quickstart.json").write_text(json.dumps({**meta, "runs_reused": 2}))
    row = next(line for line in figures.figure_table(tmp_path, "").splitlines() if line.startswith("| `quickstart`"))
    assert "0.4 min measured (2 CPU cores), 2 of 6 runs reused" in row
    assert "(every run reused" in pages.reused(meta) and pages.reused({**meta, "runs_reused": 0}) == ""
    # a reproduction that recorded its processor names it (wall times differ several-fold between CPUs)
    (tmp_path / "quickstart.json").write_text(json.dumps({**meta, "runs_reused": 0, "cpu": "AMD EPYC (AVX2)"}))
    row = next(line for line in figures.figure_table(tmp_path, "").splitlines() if line.startswith("| `quickstart`"))
    assert "0.4 min measured (2 CPU cores of AMD EPYC (AVX2))" in row


def test_a_variant_of_a_figure_gets_its_own_page_linked_from_the_main_one(tmp_path):
    meta = {"figure": "facts-capacity", "preset": "cpu", "wall_minutes": 9.0, "runs": 81, "cores": 2,
            "torch": "2.13.0", "git_commit": "abc", "finished": "2026-12-02T03:00:00"}
    for name, m in [("facts-capacity", meta), ("facts-capacity+transformers", {**meta, "preset": "transformers"}),
                    ("facts-capacity+names", {**meta, "sets": {"data.name_tokens": "2"}})]:
        (tmp_path / "in" / name).mkdir(parents=True)
        (tmp_path / "in" / name / "meta.json").write_text(json.dumps(m))
    (tmp_path / "in" / "facts-capacity+half").mkdir()  # no meta.json: an unfinished reproduction, no page
    assert figures.publish(tmp_path / "in", tmp_path / "out") == ["facts-capacity"]
    main = (tmp_path / "out" / "facts-capacity.md").read_text()
    assert "Also measured: [names](facts-capacity+names.md), [transformers](facts-capacity+transformers.md)." in main
    variant = (tmp_path / "out" / "facts-capacity+transformers.md").read_text()
    assert variant.startswith("# facts-capacity (transformers):") and "--preset transformers" in variant
    assert "(facts-capacity+transformers.png)" in variant and "Also measured" not in variant
    assert "with --set data.name_tokens=2" in (tmp_path / "out" / "facts-capacity+names.md").read_text()
    assert not (tmp_path / "out" / "facts-capacity+half.md").exists()


def test_an_empty_stratum_is_a_dash_not_nan_and_a_thin_one_says_so():
    assert pages.cell({"ours": "nan", "ours_lo": "nan", "ours_hi": "nan"}, "ours") == "-"
    assert pages.cell({"ours": "0.5", "ours_lo": "0.4", "ours_hi": "0.6"}, "ours") == "0.500 [0.400, 0.600]"
    assert pages.cell({"ours": "0.5", "ours_lo": "", "ours_hi": ""}, "ours") == "0.500"  # e.g. a count, not a rate
    assert pages.cell({"ours": "0.5", "ours_lo": "too few", "ours_hi": "too few"}, "ours") == \
        "0.500 (no interval: too few examples or classes)"
    assert pages.cell({"ours": "met"}, "ours") == "met"
    assert pages.cell({"ours": "61932.1", "ours_lo": "59659.3", "ours_hi": "63033.5"}, "ours") == \
        "61,932 [59,659, 63,034]"  # bits stored: a quantity, not a rate
    from testbed.figures.base import _cell

    assert _cell(float("nan")) == "-" and _cell(0.25) == "0.2500"


def test_late_rise_and_the_pages_plateau_line():
    from testbed.results.collect import late_rise

    # 2,000 steps: the last 30 % starts after step 1,400, so 0.6 and 0.7 are late and 0.5 the best before
    assert late_rise([(499, 0.2), (999, 0.5), (1499, 0.6), (1999, 0.7)]) == pytest.approx(0.2)
    assert late_rise([(499, 0.2), (999, 0.8), (1499, 0.79), (1999, 0.8)]) == pytest.approx(0.0)
    assert late_rise([(999, 0.5)]) is None and late_rise([]) is None
    rows = [{"config_id": c, "model": "transformer", "n_layer": layers, "task": "RO-S", "val_late_rise": rise}
            for c, layers, rise in (("a", "1", "0.001"), ("b", "3", "0.08"), ("b", "3", "0.08"))]
    summary = pages.summary(rows + [{"config_id": "x", "model": "baseline:copy_last", "val_late_rise": ""}])
    line = pages.plateau(summary)[0]
    assert line.startswith("Converged: 1 of 2 configurations") and "still rising: transformer L=3 (+0.080)" in line
    assert pages.plateau(pages.summary([{**rows[0], "val_late_rise": ""}])) == []
    # a curve that climbed to the early-stop target (or onto its plateau budget) in every seed is done, however
    # steeply it rose at the end; one seed at the cap keeps it rising
    ended = [{**rows[1], "config_id": c, "n_layer": layers, "stopped": why, "val_late_rise": rise}
             for c, layers, why, rise in (("b", "3", "early_stop", "0.9"), ("c", "4", "plateau 2 of 3, early_stop 1 "
                                          "of 3", ""), ("d", "5", "cap 1 of 3, early_stop 2 of 3", "0.5"))]
    line = pages.plateau(pages.summary(ended))[0]
    assert line.startswith("Converged: 2 of 3 configurations") and "still rising: transformer L=5 (+0.500)" in line
    assert pages.stopped_by_budget("plateau") and not pages.stopped_by_budget("") and not pages.stopped_by_budget("cap")


def test_the_page_names_configurations_that_lost_a_seed():
    rows = [{"config_id": c, "model": m, "n_layer": "2", "task": "RO-O", "n_seeds": n, "seeds": seeds}
            for c, m, n, seeds in (("a", "transformer", "3", "0,1,2"), ("b", "armt", "2", "0,2"),
                                   ("b", "armt", "2", "0,2"))]
    line = pages.seeds_short(pages.summary(rows + [{"config_id": "x", "model": "baseline:period", "n_seeds": "1"}]))[0]
    assert line.startswith("Seeds: armt L=2 has 2 of 3 (seeds 0,2;") and "transformer" not in line
    assert pages.seeds_short(pages.summary(rows[:1])) == []


def test_committed_pages_are_the_rendering_of_their_published_data(tmp_path):
    """Every page under docs/figures is what `testbed docs` renders from the data published beside it and its
    notes: no page is edited by hand, and no narrative quotes a number its data do not hold."""
    import shutil

    copy = tmp_path / "pages"
    shutil.copytree(ROOT / "docs" / "figures", copy)
    done = pages.render(copy)
    assert len(done) >= 19
    for name in done:
        assert (copy / f"{name}.md").read_text() == (ROOT / "docs" / "figures" / f"{name}.md").read_text(), \
            f"docs/figures/{name}.md is not its rendering; run `testbed docs`"


def test_notes_placeholders_read_the_pages_data_and_fail_on_what_it_lacks():
    points = [{"series": "looped", "k": "2", "ours": "0.935", "ours_lo": "0.888", "ours_hi": "0.975"},
              {"series": "looped", "k": "4", "ours": "0.387", "ours_lo": "0.257", "ours_hi": "0.533"},
              {"series": "thin", "k": "4", "ours": "0.5", "ours_lo": "too few", "ours_hi": "too few"}]
    paired = [{"model": "looped", "value": "2", "difference": "0.356", "difference_lo": "0.253",
               "difference_hi": "0.47"}]
    text = pages.fill("at k = 2: {{ours | series=looped | k=2}}, {{paired: difference | model=looped | value=2}}; "
                     "{{ours|series=thin|k=4.0}}; {{meta: wall_minutes}} min", points, paired, {"wall_minutes": 3},
                     "notes")
    assert text == ("at k = 2: 0.935 [0.888, 0.975], +0.356 [+0.253, +0.470]; 0.500 (no interval: too few "
                    "examples or classes); 3 min")
    published = [{"ours_lo": "0.1", "ours_hi": "0.3", "published": "0.2"},
                  {"ours_lo": "0.1", "ours_hi": "0.3", "published": "0.4"}, {"published": "0.2"}]
    assert pages.fill("{{inside}} inside", published, [], {}, "notes") == "1 of 2 inside"
    for bad, why in (("{{ours | series=looped}}", "2 rows"), ("{{ours | series=gone | k=2}}", "no row"),
                     ("{{nosuch | series=looped | k=2}}", "no column"), ("{{meta: nosuch}}", "no 'nosuch'"),
                     ("{{ours | k}}", "KEY=VALUE")):
        with pytest.raises(generators.ConfigError, match=why):
            pages.fill(bad, points, paired, {}, "notes")


def test_publishing_is_all_or_nothing(tmp_path):
    """A reproduction whose page cannot be rendered (its notes quote a point it no longer has) changes no page."""
    meta = {"figure": "quickstart", "preset": "cpu", "wall_minutes": 1.0, "runs": 6, "cores": 2, "torch": "2.13",
            "git_commit": "abc", "finished": "2026-12-05T03:00:00"}
    out = tmp_path / "pages"
    out.mkdir()
    (out / "quickstart.notes.md").write_text("three layers: {{ours | series=transformer L=3 | k=2}}\n")
    (tmp_path / "in" / "quickstart").mkdir(parents=True)
    (tmp_path / "in" / "quickstart" / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "in" / "quickstart" / "comparison.csv").write_text("series,k,ours\ntransformer L=3,2,0.4\n")
    assert figures.publish(tmp_path / "in", out) == ["quickstart"]
    assert "three layers: 0.400" in (out / "quickstart.md").read_text()
    (tmp_path / "in" / "quickstart" / "comparison.csv").write_text("series,k,ours\ntransformer L=1,2,0.1\n")
    with pytest.raises(generators.ConfigError, match="matches no row"):
        figures.publish(tmp_path / "in", out)
    assert "three layers: 0.400" in (out / "quickstart.md").read_text()
    assert "L=3" in (out / "quickstart.csv").read_text()  # the data stayed with the page they render


PLACEHOLDERS = {"NAME": "ca", "FIGURE": "quickstart", "RUN": "runs/run", "RUNS": "runs", "FILE.npz": "f.npz",
                "SPEC": "experiments/quickstart.toml"}


def command_lines():
    """Every `testbed ...` line of the READMEs' bash blocks and inline code, comments and shell plumbing removed."""
    for path in READMES:
        text = path.read_text()
        for span in re.findall(r"(?<!`)`(testbed [^`]+)`", text):
            span = span.replace("--field value …", "")  # a template's placeholders become concrete values
            yield path.name, [PLACEHOLDERS.get(w, w) for w in shlex.split(span)[1:]]
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("#")[0].split("&&"):
                    words = shlex.split(part)
                    while words and ("=" in words[0] or words[0] in ("for", "do", "done")):
                        words = words[1:]
                    if words and words[0].endswith("testbed"):
                        yield path.name, words[1:]


def test_every_command_line_of_the_readmes_parses():
    group = typer.main.get_command(app)
    lines = list(command_lines())
    assert len(lines) >= 20
    for where, args in lines:
        command, rest = group, list(args)
        if rest[:1] == ["--max-memory"]:  # the root option, before the command
            group.make_context("testbed", rest[:2], resilient_parsing=True)
            rest = rest[2:]
        while hasattr(command, "commands") and rest:  # the command (and the subcommand of a group such as bench)
            name, rest = rest[0], rest[1:]
            assert name in command.commands, (where, args)
            command = command.commands[name]
        if len(args) == 1 or hasattr(command, "commands"):
            continue  # a command named in passing: that it exists is what the text claims
        parsed = command.make_context(name, rest)  # raises on an unknown option or a missing argument
        if name == "gen":  # the generator's own options are checked by building its config
            from testbed.cli.common import parse_extra_options

            generators.core.registry.GENERATORS.config(parsed.params["name"], parse_extra_options(parsed.args))
            continue
        declared = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        written = {w.split("=")[0] for w in rest if w.startswith("--")}
        assert written <= declared, (where, args, written - declared)  # every option written is the command's
        assert not parsed.args, (where, args, parsed.args)  # and every word of the line was consumed


def python_block(marker: str) -> str:
    return re.search(r"```python\n(" + re.escape(marker) + r".*?)```", (ROOT / "CONTRIBUTING.md").read_text(),
                     re.S).group(1)


def typed_numbers(text: str) -> list[tuple[str, list[str]]]:
    """(decimal number, the results pages its paragraph links to) of every decimal in prose: outside fenced and inline
    code, the generated figure table, link targets and arXiv identifiers."""
    text = text[:text.find(pages.BEGIN)] + text[text.find(pages.END):] if pages.BEGIN in text else text
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        cited = re.findall(r"\(([^()\s]*figures/[\w.+-]+\.md)\)", paragraph)
        prose = re.sub(r"`[^`]*`", "", paragraph)
        prose = re.sub(r"\]\([^)]*\)", "]", prose)
        prose = re.sub(r"arXiv \d+\.\d+", "", prose)
        out += [(n, cited) for n in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", prose)]
    return out


@pytest.mark.parametrize("path", PROSE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_number_in_the_prose_that_is_not_on_the_page_it_cites(path):
    """Numbers are produced by the tool: a decimal in the READMEs or the guide must be on a results page the same
    paragraph links to (pages are rendered from data, tested above)."""
    for number, cited in typed_numbers(path.read_text()):
        texts = [(path.parent / page).resolve().read_text() for page in cited if (path.parent / page).exists()]
        where = path.relative_to(ROOT)
        assert any(number in t for t in texts), f"{where}: {number} is on no page its paragraph cites ({cited})"


def test_the_typed_number_check_can_fail():
    text = "Three layers: 0.357 [0.250, 0.463] ([page](docs/figures/quickstart.md)); `lr = 3e-3` and `0.5` in code."
    assert [n for n, _ in typed_numbers(text)] == ["0.357", "0.250", "0.463"]
    assert typed_numbers("0.99 (arXiv 2404.05405), no page") == [("0.99", [])]


def test_the_readme_is_a_short_guide():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


def test_the_adding_a_model_example_trains(tmp_path):
    from testbed import spec as specs
    from testbed.training import train

    namespace: dict = {}
    try:
        exec(compile(python_block("# my_models/bag.py"), "README-model-example", "exec"), namespace)
        resolved = specs.resolve({
            "data": {"generator": "ca", "radius": 1, "width": 6, "steps": 5, "n_input": 3},
            "model": {"name": "bag_of_tokens", "n_layer": 1, "d_model": 8},
            "train": {"batch_size": 8, "max_steps": 3, "val_every": 3, "val_size": 16, "threads": 1},
            "eval": {"test_size": 16},
        })
        _, result, status = train(resolved, tmp_path, quiet=True)
        assert status == "trained" and result["steps"] == 3
        assert result["model"] == {"n_layer": 1, "d_model": 8, "loops": None}
        layout = generators.make("ca", {"radius": 1, "width": 6, "steps": 5, "n_input": 3}).layout()
        v, n, d = len(layout.vocab), layout.seq_len, 8
        assert result["params"] == v * d + n * d + (2 * d * 2 * d + 2 * d) + (2 * d * v + v)
    finally:
        MODELS.classes.pop("bag_of_tokens", None)


def test_the_module_map_names_every_module():
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    for package in ("generators", "testbed"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT / package)
            if rel.name == "__init__.py" or rel.parts[0] in ("models", "cli", "figures", "memory") or \
                    rel.name == "__main__.py":
                continue
            name = rel.stem
            assert re.search(rf"\b{re.escape(name)}\b", layout), f"{package}/{rel} is missing from the README's layout"
    for folder in ("cli/", "figures/", "models/", "memory/", "results/", "core/"):
        assert folder in layout
    block = layout[layout.index("```") + 3:]
    assert len(block[:block.index("```")].strip().splitlines()) <= 20  # the house in at most 20 lines


def test_the_radius1_class_counts_in_the_readme_are_the_code_s():
    from generators import ca_rules

    split = {int(r): s for s, pool in ca_rules.radius1_split().items() for r in pool}
    counts = {s: sum(1 for _, m in ca_rules.radius1_classes() if split[m[0]] == s) for s in ("train", "val", "test")}
    assert f"{counts['train']} / {counts['val']} / {counts['test']} of Wolfram's 88 classes" in \
        (ROOT / "README.md").read_text()


@pytest.mark.parametrize("marker", ["# my_generators/parity.py"])
def test_the_readme_python_blocks_exist(marker):
    assert python_block(marker)
    assert np  # the generator example itself runs in tests/test_registry.py


def test_a_page_says_what_its_intervals_are_over():
    """A page renders from its data alone: what it says of its figure is the page table its reproduction recorded."""
    from testbed.figures import FIGURES, page_fields

    meta = {"preset": "cpu", "wall_minutes": 1.0, "cores": 2, "cpu": "AMD EPYC (AVX2)", "torch": "2.13.0",
            "git_commit": "abc", "finished": "2026-12-05T03:00:00"}

    def page(name, summary=None, **extra):
        return pages.page({**meta, "figure": name, "page": page_fields(FIGURES[name]), **extra}, [], [], summary or {})

    old = page("quickstart")
    law = page("cabannes-joint")
    assert "95 % interval over seeds and held-out rules" in old and pages.PREDATES in old
    new = page("quickstart", {"seeds": [3], "classes": [6, 9], "rules": [22, 26]}, intervals="t")
    assert "95 % interval over 3 seeds and 6-9 held-out symmetry classes" in new and pages.PREDATES not in new
    assert "95 % interval over the random draws of embeddings (and samples), Student t" in law
    assert pages.PREDATES not in law  # computed in closed form: its intervals never came from the bootstrap
    assert "on 2 CPU cores of AMD EPYC (AVX2)" in law  # and where it ran
