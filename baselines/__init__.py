"""Published baselines, one module each, registered through the ``mpdsnn.methods`` entry points.

Adding one: write ``baselines/<name>.py`` with a ``@register_method("<name>")`` builder and add
``<name> = "baselines.<name>"`` under ``[project.entry-points."mpdsnn.methods"]`` in
``pyproject.toml``. A separate package does the same in its own ``pyproject.toml``.
"""
