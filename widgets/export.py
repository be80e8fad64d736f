"""An executed notebook as one HTML page that shows the workbench's pictures offline.

nbconvert prefers a widget's live view when the notebook saved widget state, and that view needs
the widget JavaScript from a CDN. Every Avalon view also carries a static copy (`text/html`: inline
SVG, styles and scripts); this export picks the static copies.
"""
import nbformat

_PRIORITY = ["text/html", "image/svg+xml", "image/png", "image/jpeg", "text/markdown", "text/latex",
             "application/javascript", "text/plain"]


def notebook_to_html(notebook, path=None):
    """HTML of an executed notebook (a path or a NotebookNode) with the views' static copies;
    written to `path` when given. Returns the HTML text.

    >>> notebook_to_html("build/00-start-here.executed.ipynb", "build/00-start-here.html")
    """
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(notebook, as_version=4) if not isinstance(notebook, nbformat.NotebookNode) else notebook
    nb = nbformat.from_dict(nb)
    nb.metadata.pop("widgets", None)  # no saved widget state: no widget loader from a CDN
    config = Config({"NbConvertBase": {"display_data_priority": _PRIORITY}})
    body, _ = HTMLExporter(config=config).from_notebook_node(nb)
    if path is not None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(body)
    return body
