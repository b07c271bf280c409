"""Sphinx configuration of the keyless.aws documentation site (`make docs`, scripts/docs.sh).

scripts/docs.sh assembles the sources in .build/docs/src/ (README.md, the user guide from docs/,
the plugin and role reference that antsibull-docs generates from the plugins' own
documentation) and builds the HTML in .build/docs/html/ with this folder as the conf dir.
No intersphinx: the build runs offline, and links into docs.ansible.com stay plain text.
"""

project = "keyless.aws"
copyright = "keyless.aws maintainers"
author = "keyless.aws maintainers"
title = "keyless.aws documentation"
html_short_title = "keyless.aws"

extensions = [
    "myst_parser",           # README.md and the user guide pages (docs/*.md)
    "sphinx_antsibull_ext",  # the roles and directives of antsibull-docs' generated RST
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = []

# Markdown: `page.md#a-heading` links resolve, as on GitHub.
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_title = title
html_show_sphinx = False
html_copy_source = False
html_use_index = False
html_theme_options = {
    "collapse_navigation": False,
    "display_version": False,
}
