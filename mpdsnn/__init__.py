"""mpdsnn: a benchmark and reproducibility suite for directly trained spiking neural networks.

Two sides, one seam between them (the run folder, :mod:`mpdsnn.runfolder`):

- **training**: ``neuron/`` (LIF, thresholds, surrogates, fused and compiled backends),
  ``methods.py`` + ``baselines/`` (the registry, recipe cards in ``recipes.py``), ``models/``,
  ``data/``, ``train.py`` (the engine), ``probes.py``, ``efficiency.py``, ``tracking.py``
  (MLflow), ``distributed.py``, ``memory.py``, ``lifecycle.py``, ``batch.py``, and the run
  folder's writer. What it covers is what a run's code hash covers
  (:func:`mpdsnn.runfolder.fingerprint.training_code_files`) and what DVC's train stages depend on.
- **analysis**: ``report/``, ``verdicts/``, ``bench/``, the run folder's reader
  (``runfolder/reader.py``), ``evaluate.py`` and ``pipeline.py``. It reads run folders only, never
  the method registry, so editing it never retrains (tested: tests/test_runfolder.py).

``paper.py`` (the paper's method order, layer set and target rate) and ``cli.py`` (the one
command line) serve both.
"""

__version__ = "0.1.0"
