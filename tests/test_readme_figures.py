"""Every figure the README quotes from the data is what `make readme` computes on the sample."""

from orchestration import readme_figures


def test_readme_figures_are_those_of_the_sample(pipeline_run):
    readme = readme_figures.README.read_text(encoding="utf-8")
    blocks = readme_figures.compute_blocks(
        pipeline_run.warehouse, f"sqlite:///{pipeline_run.root / 'mlflow.db'}"
    )
    assert readme_figures.render(readme, blocks) == readme, "README.md is out of date: run `make readme`"


def test_a_block_without_its_marker_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="differ from the generated"):
        readme_figures.render("<!-- figures:split -->\nold\n<!-- /figures:split -->\n", {"results": "x"})
    rendered = readme_figures.render(
        "a\n<!-- figures:split -->\nold\n<!-- /figures:split -->\nb", {"split": "new\n"}
    )
    assert rendered == "a\n<!-- figures:split -->\nnew\n<!-- /figures:split -->\nb"
