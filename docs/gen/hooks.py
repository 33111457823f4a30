"""mkdocs hook: pages and tables generated from the code and the published results at every build.

* ``reference/cli.md`` from the argparse parsers (``cli_reference.render``);
* ``performance/index.md`` from ``docs/results/`` (``performance.render``);
* a page's ``<!-- generated: manifest-fields -->`` line becomes the manifest's field tables
  (``manifest_fields.render``).

They exist only in the built site, so they cannot fall behind the code they describe.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cli_reference  # noqa: E402
import manifest_fields  # noqa: E402
import performance  # noqa: E402

PAGES = {
    "reference/cli.md": cli_reference.render,
    "performance/index.md": performance.render,
}
MARKERS = {
    "<!-- generated: manifest-fields -->": manifest_fields.render,
}


def on_files(files: Files, config) -> Files:
    for uri, make in PAGES.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=make()))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
