"""Real data: EmoBench-format training and test sets built from public emotion data sets.

- ``rows.py``: what a reader yields (``SourceRow`` / ``BadRow``) and the shared file readers.
- ``source.py``: a source's reader plus its declarative label table and own label sets.
- One reader per source, its layout and where that layout was confirmed in its docstring:
  ``emoset``, ``fer2013``, ``meld``, ``mintrec``, ``hateful_memes``, ``memotion``, ``mustard``,
  ``mmsd2``; ``registry.py`` names them for the command line.
- ``instructions.py`` (seeded phrasings), ``builder.py`` (streaming, checks, atomic output),
  ``summary.py`` (``summary.md``), ``__main__.py`` (``python -m emollm_jax.data.sources build``).
"""
